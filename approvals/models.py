"""The BD's approval of an issuance request (one open approval per request), and each
partner's own numbering of its requests."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Partner
from coupons.models import IssuanceRequest


class Approval(models.Model):
    """Who decides a request, and what they decided.

    A BD-routed request gets an open approval at submit; an auto-routed one gets an
    approval already decided by the system (decided_by empty). The request's own status
    is the state machine; this row records the decision and holds the "one open approval
    per request" rule in the database.
    """

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("approval status", "Waiting for the BD")
        APPROVED = "approved", pgettext_lazy("approval status", "Approved")
        AUTO_APPROVED = "auto_approved", pgettext_lazy("approval status", "Auto-approved")
        REJECTED = "rejected", pgettext_lazy("approval status", "Rejected")
        CANCELLED = "cancelled", pgettext_lazy("approval status", "Cancelled")

    request = models.ForeignKey(IssuanceRequest, on_delete=models.PROTECT, related_name="approvals",
                                verbose_name=_("issuance request"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.OPEN)
    assigned_bd = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("assigned BD"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("approval")
        verbose_name_plural = _("approvals")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request"], condition=Q(status="open"),
                name="approval_one_open_per_request",
            ),
        ]

    def __str__(self) -> str:
        return _("Approval of request #%(id)s: %(status)s") % {
            "id": self.request_id, "status": self.get_status_display()}


class PendingRequestManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(status=IssuanceRequest.Status.PENDING)


class PendingRequest(IssuanceRequest):
    """The BD's queue in the admin: requests waiting for a decision."""

    objects = PendingRequestManager()

    class Meta:
        proxy = True
        verbose_name = _("pending request")
        verbose_name_plural = _("pending approval queue")


class RequestSequence(models.Model):
    """A partner's counter of request numbers: the submit locks it to take the next one
    (approvals/numbers.py), so partners see numbers of their own, never how many requests
    other partners made."""

    partner = models.OneToOneField(
        Partner, primary_key=True, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("partner"),
    )
    prefix = models.CharField(_("prefix"), max_length=6)
    last_number = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("request sequence")
        verbose_name_plural = _("request sequences")

    def __str__(self) -> str:
        return f"{self.prefix}: {self.last_number}"


class RequestNumber(models.Model):
    """The partner's own number of one request, shown as PREFIX-000123."""

    request = models.OneToOneField(
        IssuanceRequest, primary_key=True, on_delete=models.CASCADE,
        related_name="partner_number", verbose_name=_("issuance request"),
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("partner"))
    prefix = models.CharField(_("prefix"), max_length=6)
    number = models.PositiveIntegerField(_("number"))

    class Meta:
        verbose_name = _("request number")
        verbose_name_plural = _("request numbers")
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "number"], name="request_number_once_per_partner",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.prefix}-{self.number:06d}"
