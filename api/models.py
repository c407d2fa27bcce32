"""The partner API's own rows: API keys (stored as a hash, never the secret) and the
idempotency records that make a retried POST answer what the first one did."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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


class WebhookEndpoint(models.Model):
    """A partner's HTTPS address that receives the events it chose, signed with its secret
    (api/webhooks.py, docs/API.md "Webhooks"). The secret is kept sealed (api/secret_box.py):
    the platform must sign with it, so unlike an API key it can not be kept as a hash."""

    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.PROTECT,
                                related_name="webhook_endpoints", db_index=False)
    url = models.CharField(verbose_name=_("URL"), max_length=2000)
    # The event types it receives (api/webhooks.EVENT_TYPES), at least one.
    events = models.JSONField(verbose_name=_("events"), default=list)
    description = models.CharField(verbose_name=_("description"), max_length=100, blank=True)
    secret_box = models.TextField(verbose_name=_("sealed secret"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    disabled_at = models.DateTimeField(verbose_name=_("disabled at"), null=True, blank=True)
    disabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("disabled by"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="+",
    )

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["partner", "-created_at", "-id"],
                                name="webhookendpoint_partner")]

    def __str__(self) -> str:
        return self.url

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class WebhookEvent(models.Model):
    """One event of a partner (a request's or a coupon's change), written in the same
    transaction as the change: the outbox. `body` is the exact JSON every delivery of it
    sends, retries included, so a receiver de-duplicates on its `id` (`public_id`)."""

    public_id = models.CharField(verbose_name=_("event ID"), max_length=40, unique=True)
    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.PROTECT,
                                related_name="+", db_index=False)
    type = models.CharField(verbose_name=_("type"), max_length=40)
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    body = models.TextField(verbose_name=_("body"))

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        indexes = [models.Index(fields=["partner", "-created_at"], name="webhookevent_partner")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: attempted until the endpoint answers 2xx or its retry
    window (give_up_at) ends. `locked_until` is the lease of the attempt in flight (a
    worker killed mid-attempt leaves it to run out, then the sweeper queues it again);
    `enqueued_at` says a task for it was published, so the sweeper queues it again only
    when that message seems lost."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery status", "Pending")
        SUCCEEDED = "succeeded", pgettext_lazy("webhook delivery status", "Delivered")
        FAILED = "failed", pgettext_lazy("webhook delivery status", "Failed")

    # No index of their own: the unique (event, endpoint) starts with the event and the
    # log's index with the endpoint.
    event = models.ForeignKey(WebhookEvent, verbose_name=_("event"), on_delete=models.CASCADE,
                              related_name="deliveries", db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, verbose_name=_("endpoint"),
                                 on_delete=models.CASCADE, related_name="deliveries",
                                 db_index=False)
    status = models.CharField(verbose_name=_("status"), max_length=20, choices=Status.choices,
                              default=Status.PENDING)
    attempts = models.PositiveIntegerField(verbose_name=_("attempts"), default=0)
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    next_attempt_at = models.DateTimeField(verbose_name=_("next attempt at"), null=True,
                                           blank=True)
    give_up_at = models.DateTimeField(verbose_name=_("give up at"))
    locked_until = models.DateTimeField(verbose_name=_("locked until"), null=True, blank=True)
    enqueued_at = models.DateTimeField(verbose_name=_("enqueued at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(verbose_name=_("last attempt at"), null=True,
                                           blank=True)
    last_status_code = models.PositiveSmallIntegerField(verbose_name=_("last status code"),
                                                        null=True, blank=True)
    last_error = models.CharField(verbose_name=_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(verbose_name=_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"],
                                    name="webhookdelivery_once_per_endpoint"),
        ]
        indexes = [
            # The delivery log: an endpoint's deliveries, newest first.
            models.Index(fields=["endpoint", "-id"], name="webhookdelivery_log"),
            # The sweeper: only the pending ones, by when they are due.
            models.Index(fields=["next_attempt_at"], name="webhookdelivery_due",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
