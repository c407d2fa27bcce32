"""Emails about issuance requests: to the BD when one waits, to the partner when decided."""
import logging

from django.conf import settings
from django.core.mail import send_mail

from accounts.models import PartnerMembership
from couponplatform.text import count
from coupons.models import IssuanceRequest

log = logging.getLogger(__name__)


def _partner_emails(request: IssuanceRequest) -> list[str]:
    return list(
        PartnerMembership.objects.filter(partner_id=request.partner_id)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def _summary(request: IssuanceRequest) -> str:
    return (
        f"Request #{request.pk}: {request.template.name} (template #{request.template_id}) "
        f"for {count(request.recipient_count, 'account')}, {request.unit_value} × "
        f"{request.recipient_count} = {request.total_amount} {request.currency}, "
        f"{request.get_cost_bearer_display()}."
    )


def notify_bd_pending(request_id: int) -> None:
    request = IssuanceRequest.objects.select_related("partner__bd", "template").get(pk=request_id)
    bd = request.partner.bd
    if bd is None or not bd.email:
        log.warning("Request %s waits for a BD, but partner %s has none with an email",
                    request_id, request.partner_id)
        return
    send_mail(
        subject=f"[Coupons] {request.partner.name} asks for approval of request #{request.pk}",
        message=_summary(request) + "\n\nApprove or reject it in the admin's pending queue.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[bd.email],
    )


def notify_partner(request_id: int) -> None:
    """After a decision, an issue or a failure: tell the partner's users what happened."""
    request = IssuanceRequest.objects.select_related("partner", "template").get(pk=request_id)
    recipients = _partner_emails(request)
    if not recipients:
        return
    status = request.get_status_display()
    body = _summary(request) + f"\n\nStatus: {status}."
    if request.reason:
        body += f"\nReason: {request.reason}"
    send_mail(
        subject=f"[Coupons] Request #{request.pk} is {status.lower()}",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
