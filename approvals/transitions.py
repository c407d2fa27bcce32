"""The one mover of an issuance request's status and the request's row lock: the decisions
(approvals/services.py) and the release (approvals/release.py) both move requests here."""
from django.dispatch import Signal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.services import audit_record
from couponplatform.exceptions import InvalidTransitionError
from coupons.locks import issuance_requests_for_update
from coupons.models import IssuanceRequest

Status = IssuanceRequest.Status

# Sent by every move, inside its transaction, with the request (its new status saved),
# `before` and `to`: the API writes its webhook events here, so an event commits or rolls
# back with the change (approvals does not import api). A receiver that raises rolls the
# move back.
issuance_request_moved = Signal()


def issuance_request_lock(request_id: int) -> IssuanceRequest:
    """The request's row, locked (its partner and template read along, not locked)."""
    try:
        return (
            issuance_requests_for_update().select_related("partner", "template", "partner_number")
            .get(pk=request_id)
        )
    except IssuanceRequest.DoesNotExist as exc:
        raise InvalidTransitionError(_("There is no request #%(id)s.")
                                     % {"id": request_id}) from exc


# What a move does, as the end of "… it can not be <verb>".
VERBS = {
    Status.APPROVED: gettext_lazy("approved"),
    Status.REJECTED: gettext_lazy("rejected"),
    Status.CANCELLED: gettext_lazy("cancelled"),
    Status.ISSUED: gettext_lazy("issued"),
    Status.FAILED: gettext_lazy("marked as failed"),
    Status.WITHDRAWN: gettext_lazy("withdrawn"),
}


def issuance_request_move(*, request: IssuanceRequest, to: str, actor, reason: str = "",
                          fields: tuple[str, ...] = ()) -> None:
    """The one place a request's status changes: refused unless IssuanceRequest.TRANSITIONS
    allows it from the current status; the caller holds the row lock."""
    if not request.can_move_to(to):
        raise InvalidTransitionError(
            _("Request %(number)s is %(status)s; it can not be %(verb)s.") % {
                "number": request.number,
                "status": str(request.get_status_display()).lower(),
                "verb": VERBS.get(to, to)},
        )
    before = request.status
    request.status = to
    request.save(update_fields=["status", *fields])
    audit_record(
        actor=actor, partner=request.partner, action=f"request.{to}", obj=request,
        before={"status": before}, after={"status": to}, reason=reason,
    )
    issuance_request_moved.send(sender=IssuanceRequest, request=request, before=before, to=to)
