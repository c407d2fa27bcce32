"""The approval state machine's decisions: routing at submit, approve, reject, cancel,
retry and withdraw (the release is approvals/release.py).

Every move locks the request row and goes through approvals/transitions.py, which checks
IssuanceRequest.TRANSITIONS, saves with update_fields and writes the audit row; follow-up
work is enqueued on commit. Lock order, everywhere: request → template → budget.
"""
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.locks import platform_budgets_for_update
from accounts.permissions import partner_writer_require, user_may
from approvals import notifications
from approvals.models import Approval
from approvals.release import release_schedule
from approvals.transitions import issuance_request_lock, issuance_request_move
from couponplatform.exceptions import InvalidTransitionError, PermissionDeniedError
from coupons.models import (
    CostBearer,
    IssuanceRecipient,
    IssuanceRequest,
)

log = logging.getLogger(__name__)
Status = IssuanceRequest.Status

REASON_MAX = 2000
# The reasons the system writes to the audit log, kept in English there and shown in the
# reader's language (approvals/tables.history_row).
AUTO_APPROVED_REASON = gettext_noop(
    "Auto-approved: partner-borne and the partner's requests need no BD approval.")
RETRIED_REASON = gettext_noop("Retried by the partner.")
SYSTEM_REASONS = frozenset({AUTO_APPROVED_REASON, RETRIED_REASON})



# ---------------------------------------------------------------------------------------
# Helpers


def _require_status(request: IssuanceRequest, status: str, verb: str) -> None:
    """Approve and retry both lead to approved, so the table alone can not tell them apart:
    each also names the one status it starts from."""
    if request.status != status:
        raise InvalidTransitionError(
            _("Request %(number)s is %(status)s; it can not be %(verb)s.") % {
                "number": request.number,
                "status": str(request.get_status_display()).lower(), "verb": verb},
        )


def _free(request: IssuanceRequest) -> None:
    """Give back what a request held: its "Limited to 1" accounts and its budget."""
    IssuanceRecipient.objects.filter(request=request, holds=True).update(holds=False)
    if request.cost_bearer == CostBearer.PLATFORM:
        # The UPDATE takes the budget's row lock itself.
        platform_budgets_for_update().filter(
            partner_id=request.partner_id, currency=request.currency,
        ).update(reserved=F("reserved") - request.total_amount)


def _clean_reason(reason: str | None, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidTransitionError(_("Give a reason: the partner sees it."))
    if len(reason) > REASON_MAX:
        raise InvalidTransitionError(_("The reason can be at most %(max)s characters.")
                                     % {"max": REASON_MAX})
    return reason


def _require_bd(user, request: IssuanceRequest, action: str) -> None:
    if not user_may(user, action, request.partner):
        raise PermissionDeniedError(
            _("Only the BD of %(partner)s can decide request %(number)s.")
            % {"partner": request.partner.name, "number": request.number},
        )
    if request.submitted_by_id == user.pk:
        raise PermissionDeniedError(_("You submitted this request, so you can not decide it."))


def _require_partner_writer(user, request: IssuanceRequest, action: str) -> None:
    # Cancel, retry and withdraw stay open with the coupon function off: they free what
    # the request holds (or, for retry, fail again with the reason).
    partner_writer_require(
        user, request.partner, action=action, needs_coupon_function=False,
        wrong_role=_("Your role can view requests but not change them."),
    )


def _close_open_approval(request: IssuanceRequest, status: str, *, actor, reason: str = ""):
    Approval.objects.filter(request=request, status=Approval.Status.OPEN).update(
        status=status, decided_by=actor if getattr(actor, "pk", None) else None,
        decided_at=timezone.now(), reason=reason,
    )


# ---------------------------------------------------------------------------------------
# Routing (receiver of coupons.services.issuance_request_submitted, inside the submit)


def approval_route(*, request: IssuanceRequest, acting_user) -> Approval:
    """Platform-borne → the BD; partner-borne → the BD if the partner asks for it,
    otherwise the system approves at once (no human approver) and releases."""
    if request.route == IssuanceRequest.Route.BD:
        approval = Approval.objects.create(
            request=request, status=Approval.Status.OPEN, assigned_bd=request.partner.bd,
        )
        transaction.on_commit(
            lambda: notifications.notify_bd_pending(request.pk), robust=True,
        )
        return approval
    now = timezone.now()
    approval = Approval.objects.create(
        request=request, status=Approval.Status.AUTO_APPROVED, decided_at=now,
    )
    request.decided_at = now
    issuance_request_move(
        request=request, to=Status.APPROVED, actor=None, fields=("decided_at",),
        reason=AUTO_APPROVED_REASON,
    )
    release_schedule(request=request)
    return approval


# ---------------------------------------------------------------------------------------
# Decisions


def approval_approve(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        _require_bd(acting_user, request, "request_approve")
        _require_status(request, Status.PENDING, gettext_lazy("approved"))
        request.decided_by = acting_user
        request.decided_at = timezone.now()
        issuance_request_move(request=request, to=Status.APPROVED, actor=acting_user,
                              fields=("decided_by", "decided_at"))
        _close_open_approval(request, Approval.Status.APPROVED, actor=acting_user)
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
        release_schedule(request=request)
    return request


def approval_reject(*, request_id: int, acting_user, reason: str) -> IssuanceRequest:
    reason = _clean_reason(reason, required=True)
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        _require_bd(acting_user, request, "request_reject")
        request.decided_by = acting_user
        request.decided_at = timezone.now()
        request.reason = reason
        issuance_request_move(request=request, to=Status.REJECTED, actor=acting_user,
                              reason=reason, fields=("decided_by", "decided_at", "reason"))
        _close_open_approval(request, Approval.Status.REJECTED, actor=acting_user, reason=reason)
        _free(request)
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
    return request


def issuance_request_cancel(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        _require_partner_writer(acting_user, request, "request_cancel")
        issuance_request_move(request=request, to=Status.CANCELLED, actor=acting_user)
        _close_open_approval(request, Approval.Status.CANCELLED, actor=acting_user)
        _free(request)
    return request


def issuance_request_retry(*, request_id: int, acting_user) -> IssuanceRequest:
    """A request that failed to issue goes back to approved and is released again."""
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        _require_partner_writer(acting_user, request, "request_retry")
        _require_status(request, Status.FAILED, gettext_lazy("retried"))
        request.reason = ""
        issuance_request_move(request=request, to=Status.APPROVED, actor=acting_user,
                              reason=RETRIED_REASON, fields=("reason",))
        release_schedule(request=request)
    return request


def issuance_request_withdraw(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        _require_partner_writer(acting_user, request, "request_withdraw")
        issuance_request_move(request=request, to=Status.WITHDRAWN, actor=acting_user)
        _free(request)
    return request
