"""The partner API's own rows: API keys (stored as a hash, never the secret) and the
idempotency records that make a retried POST answer what the first one did."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Partner


class ApiKey(models.Model):
    """A partner's key for the API. It acts through its own user (`user`, made with the key
    and holding a membership of the key's partner), so every service checks and audits it
    like any partner user: the audit rows' actor names the key."""

    class Role(models.TextChoices):
        READ_ONLY = "read_only", "Read-only"
        OPERATOR = "operator", "Operator"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="api_keys")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key",
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=20, choices=Role.choices)
    # The visible part of the key ("cpk_<prefix>_…"), by which a request's key is found.
    prefix = models.CharField(max_length=16, unique=True)
    # sha256 of the whole key: the key has 256 random bits, so no slow hash is needed.
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
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

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="idempotency_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.key}"
