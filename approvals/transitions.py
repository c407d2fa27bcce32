"""The one mover of an issuance request's status and the request's row lock: the decisions
(approvals/services.py) and the release (approvals/release.py) both move requests here."""
from django.dispatch import Signal

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
        raise InvalidTransitionError(f"There is no request #{request_id}.") from exc


VERBS = {
    Status.APPROVED: "approved",
    Status.REJECTED: "rejected",
    Status.CANCELLED: "cancelled",
    Status.ISSUED: "issued",
    Status.FAILED: "marked as failed",
    Status.WITHDRAWN: "withdrawn",
}


def issuance_request_move(*, request: IssuanceRequest, to: str, actor, reason: str = "",
                          fields: tuple[str, ...] = ()) -> None:
    """The one place a request's status changes: refused unless IssuanceRequest.TRANSITIONS
    allows it from the current status; the caller holds the row lock."""
    if not request.can_move_to(to):
        raise InvalidTransitionError(
            f"Request {request.number} is {request.get_status_display().lower()}; it can not be "
            f"{VERBS.get(to, to)}.",
        )
    before = request.status
    request.status = to
    request.save(update_fields=["status", *fields])
    audit_record(
        actor=actor, partner=request.partner, action=f"request.{to}", obj=request,
        before={"status": before}, after={"status": to}, reason=reason,
    )
    issuance_request_moved.send(sender=IssuanceRequest, request=request, before=before, to=to)
