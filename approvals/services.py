"""The approval state machine and the release of coupons (PRODUCT §5).

Every move locks the request row, checks IssuanceRequest.TRANSITIONS, saves with
update_fields, writes the audit row and enqueues follow-up work on commit. Lock order,
everywhere: request → template → budget.
"""
import logging
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import PlatformBudget
from accounts.selectors import membership_for
from approvals import notifications
from approvals.models import Approval
from audit.services import audit_record
from couponplatform import dispatch
from couponplatform.db import bulk_insert
from couponplatform.exceptions import InvalidTransitionError, PermissionDeniedError
from couponplatform.money import fmt
from coupons.models import (
    CostBearer,
    Coupon,
    CouponKind,
    CouponTemplate,
    IssuanceRecipient,
    IssuanceRequest,
)
from coupons.services import coupons_released, template_issuable_problem

log = logging.getLogger(__name__)
Status = IssuanceRequest.Status

REASON_MAX = 2000
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud


# ---------------------------------------------------------------------------------------
# Helpers


def _lock_request(request_id: int) -> IssuanceRequest:
    try:
        return (
            IssuanceRequest.objects.select_for_update(of=("self",))
            .select_related("partner", "template")
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


def _move(request: IssuanceRequest, to: str, *, actor, reason: str = "",
          fields: tuple[str, ...] = ()) -> None:
    """The one place a request's status changes."""
    if not request.can_move_to(to):
        raise InvalidTransitionError(
            f"Request #{request.pk} is {request.get_status_display().lower()}; it can not be "
            f"{VERBS.get(to, to)}.",
        )
    before = request.status
    request.status = to
    request.save(update_fields=["status", *fields])
    audit_record(
        actor=actor, partner=request.partner, action=f"request.{to}", obj=request,
        before={"status": before}, after={"status": to}, reason=reason,
    )


def _require_status(request: IssuanceRequest, status: str, verb: str) -> None:
    """Approve and retry both lead to approved, so the table alone can not tell them apart:
    each also names the one status it starts from."""
    if request.status != status:
        raise InvalidTransitionError(
            f"Request #{request.pk} is {request.get_status_display().lower()}; it can not be "
            f"{verb}.",
        )


def _free(request: IssuanceRequest) -> None:
    """Give back what a request held: its "Limited to 1" accounts and its budget."""
    IssuanceRecipient.objects.filter(request=request, holds=True).update(holds=False)
    if request.cost_bearer == CostBearer.PLATFORM:
        PlatformBudget.objects.select_for_update().filter(
            partner_id=request.partner_id, currency=request.currency,
        ).update(reserved=F("reserved") - request.total_amount)


def _clean_reason(reason: str | None, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidTransitionError("Give a reason: the partner sees it.")
    if len(reason) > REASON_MAX:
        raise InvalidTransitionError(f"The reason can be at most {REASON_MAX} characters.")
    return reason


def bd_may_decide(user, request: IssuanceRequest) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(user.is_staff and user.is_bd and request.partner.bd_id == user.pk)


def _require_bd(user, request: IssuanceRequest) -> None:
    if not bd_may_decide(user, request):
        raise PermissionDeniedError(
            f"Only the BD of {request.partner.name} can decide request #{request.pk}.",
        )
    if request.submitted_by_id == user.pk:
        raise PermissionDeniedError("You submitted this request, so you can not decide it.")


def _require_partner_writer(user, request: IssuanceRequest) -> None:
    membership = membership_for(user)
    if membership is None or membership.partner_id != request.partner_id:
        raise PermissionDeniedError("You do not act for this partner.")
    if not membership.can_write:
        raise PermissionDeniedError("Your role can view requests but not change them.")


def _close_open_approval(request: IssuanceRequest, status: str, *, actor, reason: str = ""):
    Approval.objects.filter(request=request, status=Approval.Status.OPEN).update(
        status=status, decided_by=actor if getattr(actor, "pk", None) else None,
        decided_at=timezone.now(), reason=reason,
    )


def _schedule_release(request: IssuanceRequest) -> None:
    """After commit: small requests are released right away, large ones by a task.

    Robust callbacks: if the release or the broker fails, the approval still stands and
    the sweeper (release_sweep) releases the request later.
    """
    request_id = request.pk
    if request.recipient_count <= settings.RELEASE_INLINE_MAX:
        transaction.on_commit(
            lambda: issuance_request_release(request_id=request_id), robust=True,
        )
    else:
        dispatch.enqueue_on_commit(dispatch.REQUEST_RELEASE, request_id)


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
    _move(request, Status.APPROVED, actor=None, reason="Auto-approved: partner-borne and the "
          "partner's requests need no BD approval.", fields=("decided_at",))
    _schedule_release(request)
    return approval


# ---------------------------------------------------------------------------------------
# Decisions


def approval_approve(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = _lock_request(request_id)
        _require_bd(acting_user, request)
        _require_status(request, Status.PENDING, "approved")
        request.decided_by = acting_user
        request.decided_at = timezone.now()
        _move(request, Status.APPROVED, actor=acting_user, fields=("decided_by", "decided_at"))
        _close_open_approval(request, Approval.Status.APPROVED, actor=acting_user)
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
        _schedule_release(request)
    return request


def approval_reject(*, request_id: int, acting_user, reason: str) -> IssuanceRequest:
    reason = _clean_reason(reason, required=True)
    with transaction.atomic():
        request = _lock_request(request_id)
        _require_bd(acting_user, request)
        request.decided_by = acting_user
        request.decided_at = timezone.now()
        request.reason = reason
        _move(request, Status.REJECTED, actor=acting_user, reason=reason,
              fields=("decided_by", "decided_at", "reason"))
        _close_open_approval(request, Approval.Status.REJECTED, actor=acting_user, reason=reason)
        _free(request)
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
    return request


def issuance_request_cancel(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = _lock_request(request_id)
        _require_partner_writer(acting_user, request)
        _move(request, Status.CANCELLED, actor=acting_user)
        _close_open_approval(request, Approval.Status.CANCELLED, actor=acting_user)
        _free(request)
    return request


def issuance_request_retry(*, request_id: int, acting_user) -> IssuanceRequest:
    """A request that failed to issue goes back to approved and is released again."""
    with transaction.atomic():
        request = _lock_request(request_id)
        _require_partner_writer(acting_user, request)
        _require_status(request, Status.FAILED, "retried")
        request.reason = ""
        _move(request, Status.APPROVED, actor=acting_user, reason="Retried by the partner.",
              fields=("reason",))
        _schedule_release(request)
    return request


def issuance_request_withdraw(*, request_id: int, acting_user) -> IssuanceRequest:
    with transaction.atomic():
        request = _lock_request(request_id)
        _require_partner_writer(acting_user, request)
        _move(request, Status.WITHDRAWN, actor=acting_user)
        _free(request)
    return request


# ---------------------------------------------------------------------------------------
# Release


# Byte → code character: 32 characters divide 256 byte values evenly, so each character is
# equally likely, as with secrets.choice, for one os.urandom call per code instead of 14.
_CODE_TABLE = bytes(CODE_ALPHABET.encode()[b % len(CODE_ALPHABET)] for b in range(256))


def new_coupon_code() -> str:
    """"CP" and 14 characters of CODE_ALPHABET from the OS's CSPRNG (70 bits)."""
    return "CP" + secrets.token_bytes(14).translate(_CODE_TABLE).decode()


def release_progress(request_id: int) -> int | None:
    """Coupons written so far by a running release; None when unknown. The cache is the
    broker's Redis: while it is down the request page shows no progress rather than fail."""
    try:
        return cache.get(f"release-progress:{request_id}")
    except Exception:  # noqa: BLE001 — any cache backend's error
        log.warning("release progress unavailable: the cache is down", exc_info=True)
        return None


def _release_problem(request: IssuanceRequest, template: CouponTemplate) -> str | None:
    """Rules that held at submit and may not hold now (PRODUCT §5)."""
    if problem := template_issuable_problem(template):
        return problem
    if template.release_cap_count is not None and (
        template.released_count + request.recipient_count > template.release_cap_count
    ):
        left = max(template.release_cap_count - template.released_count, 0)
        return (f"The template's release cap of {template.release_cap_count:,} coupons is "
                f"reached: {left:,} left, {request.recipient_count:,} needed.")
    if template.release_cap_amount is not None and (
        template.released_amount + request.total_amount > template.release_cap_amount
    ):
        left = max(template.release_cap_amount - template.released_amount, Decimal("0"))
        return (f"The template's release cap of "
                f"{fmt(template.release_cap_amount, template.currency)} is reached: "
                f"{fmt(left, template.currency)} left, "
                f"{fmt(request.total_amount, template.currency)} needed.")
    return None


def _validity(template: CouponTemplate, today):
    if template.validity_type == CouponTemplate.ValidityType.FIXED:
        return template.valid_from, template.valid_until
    # "Valid N days from release": the release day is day 1.
    return today, today + timedelta(days=template.valid_days - 1)


COUPON_FIELDS = [
    "code", "template", "request", "recipient", "partner", "sub_account", "kind",
    "cost_bearer", "currency", "amount", "balance", "voided_amount", "discount_rate",
    "uses_total", "uses_left", "min_bill_amount", "all_products", "product_codes",
    "valid_from", "valid_until", "status", "released_at", "void_reason",
]


def issuance_request_release(*, request_id: int) -> IssuanceRequest:
    """Release an approved request: every coupon or none. Safe to run twice or at once:
    the request row lock serialises runs and a released request is left as it is."""
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != Status.APPROVED:
            return request
        # of=self: the template row only, not its partner's (select_related would lock both).
        template = (
            CouponTemplate.objects.select_for_update(of=("self",)).select_related("partner")
            .get(pk=request.template_id)
        )
        problem = _release_problem(request, template)
        budget = None
        if problem is None and request.cost_bearer == CostBearer.PLATFORM:
            budget = PlatformBudget.objects.select_for_update().filter(
                partner_id=request.partner_id, currency=request.currency,
            ).first()
            if budget is None or budget.consumed + request.total_amount > budget.amount:
                left = budget.amount - budget.consumed if budget else Decimal("0")
                problem = (
                    f"The platform-borne budget is used up: "
                    f"{fmt(max(left, Decimal('0')), request.currency)} left, "
                    f"{fmt(request.total_amount, request.currency)} needed."
                )
        if problem:
            request.reason = problem
            _move(request, Status.FAILED, actor=None, reason=problem, fields=("reason",))
            transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
            return request

        now = timezone.now()
        valid_from, valid_until = _validity(template, timezone.localdate())
        codes = (
            sorted(template.products.values_list("code", flat=True))
            if not template.all_products else []
        )
        amount = template.unit_value
        is_discount = template.kind == CouponKind.DISCOUNT
        uses = template.discount_uses if is_discount else None
        recipients = IssuanceRecipient.objects.filter(request=request).values_list(
            "pk", "sub_account_id",
        ).order_by("pk")
        rows = []
        progress_key = f"release-progress:{request_id}"
        # One fetch: the rows below hold every recipient anyway, so a server-side cursor
        # would only add round trips.
        for i, (recipient_id, sub_account_id) in enumerate(list(recipients), start=1):
            rows.append((
                new_coupon_code(), template.pk, request.pk, recipient_id, request.partner_id,
                sub_account_id, template.kind, template.cost_bearer, template.currency,
                amount, amount, Decimal("0"), template.discount_rate if is_discount else None,
                uses, uses, template.min_bill_amount, template.all_products, codes,
                valid_from, valid_until, Coupon.Status.AVAILABLE, now, "",
            ))
            if i % 2000 == 0:
                cache.set(progress_key, i, 3600)
        bulk_insert(Coupon, COUPON_FIELDS, rows)
        count = len(rows)
        CouponTemplate.objects.filter(pk=template.pk).update(
            released_count=F("released_count") + count,
            released_amount=F("released_amount") + amount * count,
        )
        if budget is not None:
            PlatformBudget.objects.filter(pk=budget.pk).update(
                reserved=F("reserved") - request.total_amount,
                consumed=F("consumed") + request.total_amount,
            )
        request.issued_at = now
        request.released_so_far = count
        request.reason = ""
        request.postings_pending = True
        _move(request, Status.ISSUED, actor=None,
              fields=("issued_at", "released_so_far", "reason", "postings_pending"))
        sub_account_ids = [row[5] for row in rows]
        if len(rows) >= 2000:  # progress was written: the finished release clears it
            transaction.on_commit(lambda: cache.delete(progress_key), robust=True)
        transaction.on_commit(
            lambda: coupons_released.send(
                sender=IssuanceRequest, request_id=request_id, sub_account_ids=sub_account_ids,
            ),
            robust=True,
        )
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
    return request


def release_sweep(*, older_than_seconds: int = 120) -> list[int]:
    """Release approved requests whose release was lost (broker down, worker killed)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        IssuanceRequest.objects.filter(status=Status.APPROVED, decided_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    for request_id in ids:
        issuance_request_release(request_id=request_id)
    return ids
