"""The partner API's own rows: API keys (stored as a hash, never the secret) and the
idempotency records that make a retried POST answer what the first one did."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Partner


class ApiKey(models.Model):
    """A partner's key for the API. It acts through its own user (`user`, made with the key
    and holding a membership of the key's partner), so every service checks and audits it
    like any partner user: the audit rows' actor names the key."""

    class Role(models.TextChoices):
        READ_ONLY = "read_only", _("Read-only")
        OPERATOR = "operator", _("Operator")

    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.PROTECT,
                                related_name="api_keys")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT,
        related_name="api_key",
    )
    name = models.CharField(verbose_name=_("name"), max_length=100)
    role = models.CharField(verbose_name=_("role"), max_length=20, choices=Role.choices)
    # The visible part of the key ("cpk_<prefix>_…"), by which a request's key is found.
    prefix = models.CharField(verbose_name=_("prefix"), max_length=16, unique=True)
    # sha256 of the whole key: the key has 256 random bits, so no slow hash is needed.
    secret_hash = models.CharField(verbose_name=_("secret hash"), max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(verbose_name=_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(verbose_name=_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(verbose_name=_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("revoked by"), null=True, blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["partner", "-created_at", "-id"], name="apikey_partner")]

    def __str__(self) -> str:
        return f"{self.name} (cpk_{self.prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"cpk_{self.prefix}"

    @property
    def can_write(self) -> bool:
        return self.role == self.Role.OPERATOR

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, kept per partner for
    API_IDEMPOTENCY_DAYS days. The row commits in the same transaction as the work it
    guards, and the unique (partner, key) is what lets only one of many racing requests
    do the work (api/idempotency.py)."""

    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.CASCADE,
                                related_name="+")
    key = models.CharField(verbose_name=_("key"), max_length=255)
    fingerprint = models.CharField(verbose_name=_("fingerprint"), max_length=64)
    api_key = models.ForeignKey(ApiKey, verbose_name=_("API key"), null=True,
                                on_delete=models.SET_NULL, related_name="+")
    status_code = models.PositiveSmallIntegerField(verbose_name=_("status code"))
    body = models.JSONField(verbose_name=_("body"))
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now,
                                      db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="idempotency_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.key}"
