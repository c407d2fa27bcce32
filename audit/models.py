"""The append-only audit log: who did what to which object, before and after."""
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from couponplatform.times import moment_text


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The audit log is append-only")

    def delete(self):
        raise TypeError("The audit log is append-only")


class AuditLog(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("actor"), help_text=_("Empty when the system acted."),
    )
    partner = models.ForeignKey(
        "accounts.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("partner"),
    )
    action = models.CharField(_("action"), max_length=80)
    object_type = models.CharField(_("object type"), max_length=80)
    object_id = models.CharField(_("object ID"), max_length=40)
    before = models.JSONField(_("before"), null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(_("after"), null=True, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField(_("reason"), blank=True)
    # The web request (X-Request-ID) or task that wrote the row, as in the log lines
    # (couponplatform/logs.py); empty for rows written outside both (a shell, a migration).
    request_id = models.CharField(_("request ID"), max_length=64, blank=True, default="",
                                  db_default="")

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit log")
        verbose_name_plural = _("audit logs")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{moment_text(self.created_at)} {self.action} {self.object_type}#{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit log is append-only")
