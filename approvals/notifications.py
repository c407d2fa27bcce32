"""Emails about issuance requests: to the BD when one waits, to the partner when decided.

Each mail is written in its recipient's language (User.language, couponplatform/languages.py):
the partner's users get one mail per language among them.

The services call `notify_*` after their commit; that enqueues the mail on the
notifications queue (couponplatform/queues.py), so a slow mail server holds up neither the
request nor the release. The tasks call `*_mail_send`.
"""
import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import PartnerMembership
from couponplatform import dispatch
from couponplatform.languages import language_of
from coupons.models import IssuanceRequest

log = logging.getLogger(__name__)


def _partner_emails(request: IssuanceRequest) -> dict[str, list[str]]:
    """The partner's users' addresses by the language each reads."""
    by_language = defaultdict(list)
    rows = (PartnerMembership.objects.filter(partner_id=request.partner_id)
            .exclude(user__email="").select_related("user").order_by("pk"))
    for membership in rows:
        by_language[language_of(membership.user)].append(membership.user.email)
    return dict(by_language)


def accounts(n: int) -> str:
    return ngettext("%(n)s account", "%(n)s accounts", n) % {"n": f"{n:,}"}


def _summary(request: IssuanceRequest) -> str:
    return _(
        "Request %(number)s: %(template)s (template #%(template_id)s) for %(accounts)s, "
        "%(unit)s × %(count)s = %(total)s %(currency)s, %(cost_bearer)s."
    ) % {"number": request.number, "template": request.template.name,
         "template_id": request.template_id, "accounts": accounts(request.recipient_count),
         "unit": request.unit_value, "count": request.recipient_count,
         "total": request.total_amount, "currency": request.currency,
         "cost_bearer": request.get_cost_bearer_display()}


def notify_bd_pending(request_id: int) -> None:
    dispatch.enqueue(dispatch.NOTIFY_BD_PENDING, request_id)


def notify_partner(request_id: int) -> None:
    """After a decision, an issue or a failure: tell the partner's users what happened."""
    dispatch.enqueue(dispatch.NOTIFY_PARTNER, request_id)


def bd_pending_mail_send(*, request_id: int) -> None:
    request = IssuanceRequest.objects.select_related(
        "partner__bd", "template", "partner_number",
    ).get(pk=request_id)
    bd = request.partner.bd
    if bd is None or not bd.email:
        log.warning("Request %s waits for a BD, but partner %s has none with an email",
                    request_id, request.partner_id)
        return
    with translation.override(language_of(bd)):
        send_mail(
            subject=_("[Coupons] %(partner)s asks for approval of request %(number)s (#%(id)s)")
            % {"partner": request.partner.name, "number": request.number, "id": request.pk},
            message=_summary(request) + "\n\n"
            + _("Approve or reject it in the admin's pending queue."),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[bd.email],
        )


def partner_mail_send(*, request_id: int) -> None:
    request = IssuanceRequest.objects.select_related(
        "partner", "template", "partner_number",
    ).get(pk=request_id)
    for language, recipients in _partner_emails(request).items():
        with translation.override(language):
            status = str(request.get_status_display())
            body = _summary(request) + "\n\n" + _("Status: %(status)s.") % {"status": status}
            if request.reason:
                body += "\n" + _("Reason: %(reason)s") % {"reason": request.reason}
            send_mail(
                subject=_("[Coupons] Request %(number)s is %(status)s")
                % {"number": request.number, "status": status.lower()},
                message=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=recipients,
            )
