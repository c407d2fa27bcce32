"""Coupon statuses billing moves besides used up (the posting's): expiry (the balance
stays, as breakage) and voiding (a partner admin withdraws the unused balance). Each goes
through the coupon's one mover, coupons/transitions.coupons_move."""
from datetime import date

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.permissions import partner_writer_require
from billing.models import DailyBill
from couponplatform.exceptions import ApplicationError
from couponplatform.money import ZERO, cents
from coupons.locks import coupons_for_update
from coupons.models import Coupon
from coupons.transitions import coupon_move_refusal, coupons_move


def coupons_expire(*, today: date | None = None, batch_size: int = 1000) -> int:
    """Mark available coupons past their valid until expired; their balance stays (breakage).

    A coupon whose account still has an unposted bill inside its validity waits, so a slow
    posting task does not lose the money the coupon was due to pay.
    """
    today = today or timezone.localdate()
    unposted = DailyBill.objects.filter(
        sub_account_id=OuterRef("sub_account_id"), posted_at__isnull=True,
        date__gte=OuterRef("valid_from"), date__lte=OuterRef("valid_until"),
    )
    due = Coupon.objects.filter(
        status=Coupon.Status.AVAILABLE, valid_until__lt=today,
    ).exclude(Exists(unposted))
    expired = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            # pk order, like every other coupon locker, so expiry never deadlocks a posting.
            batch = list(coupons_for_update().filter(pk__in=Subquery(
                due.filter(pk__gt=last_pk).order_by("pk").values("pk")[:batch_size],
            )))
            if not batch:
                break
            last_pk = batch[-1].pk
            # The rows are re-read under the lock: one voided or used up meanwhile stays so.
            batch = [c for c in batch if c.status == Coupon.Status.AVAILABLE]
            coupons_move(coupons=batch, to=Coupon.Status.EXPIRED, action="coupon.expire",
                         after={c.pk: {"breakage": c.balance} for c in batch})
            expired += len(batch)
    return expired


def _void_require(*, partner, acting_user, reason: str) -> str:
    """The void's rules, whoever asks (the console's one coupon, the API's batch): a
    partner admin of the coupons' partner, and a reason."""
    reason = (reason or "").strip()
    partner_writer_require(
        acting_user, partner, action="coupon_void",
        not_a_member=_("You do not act for the partner that issued this coupon."),
        wrong_role=_("Only a partner admin can void a coupon."),
    )
    if not reason:
        raise ApplicationError(_("Give a reason for voiding the coupon."))
    return reason


def _void_move(coupons: list[Coupon], *, acting_user, reason: str) -> None:
    """Withdraw the locked `coupons`' balances; both sides of the SET read the row as it
    was, so each balance moves over whole. The reason, who and when live on the coupon too
    (the pages, the exports and the admin show them), written here only."""
    coupons_move(
        coupons=coupons, to=Coupon.Status.VOIDED, action="coupon.void",
        actor=acting_user, reason=reason,
        changes={"voided_amount": cents(F("voided_amount") + F("balance")),
                 "balance": ZERO, "void_reason": reason,
                 "voided_at": timezone.now(), "voided_by": acting_user},
        before={c.pk: {"balance": c.balance, "voided_amount": c.voided_amount}
                for c in coupons},
        after={c.pk: {"balance": ZERO, "voided_amount": c.voided_amount + c.balance}
               for c in coupons},
    )


def coupon_void(*, coupon: Coupon, acting_user, reason: str) -> Coupon:
    """A partner admin withdraws a coupon's unused balance; deductions already made stay."""
    reason = _void_require(partner=coupon.partner, acting_user=acting_user, reason=reason)
    with transaction.atomic():
        locked = coupons_for_update().get(pk=coupon.pk)
        _void_move([locked], acting_user=acting_user, reason=reason)
        locked.refresh_from_db()
    return locked


VOID_BATCH_MAX = 1000
NOT_FOUND = gettext_lazy("No coupon of yours has this code.")
LISTED_TWICE = gettext_lazy("This code is listed twice; it was voided at most once.")


def coupons_void(*, partner, codes: list[str], acting_user, reason: str) -> list[tuple]:
    """Void many of the partner's coupons, each on its own: per code, in the order given,
    (code, the voided coupon or None, why not). A code that is not the partner's, listed
    twice or of a coupon that can no longer be voided is refused alone; it voids nothing
    else and stops nothing else."""
    reason = _void_require(partner=partner, acting_user=acting_user, reason=reason)
    if len(codes) > VOID_BATCH_MAX:
        raise ApplicationError(_("Void at most %(max)s coupons at a time.")
                               % {"max": f"{VOID_BATCH_MAX:,}"})
    with transaction.atomic():
        found = {c.code: c for c in coupons_for_update().filter(
            partner=partner, code__in=sorted(set(codes)))}
        voidable = [c for c in found.values() if c.can_move_to(Coupon.Status.VOIDED)]
        if voidable:
            _void_move(voidable, acting_user=acting_user, reason=reason)
    fresh = {c.code: c for c in Coupon.objects.filter(pk__in=[c.pk for c in voidable])
             .select_related("sub_account")}
    results, seen = [], set()
    for code in codes:
        coupon = found.get(code)
        if code in seen:
            results.append((code, None, str(LISTED_TWICE)))
        elif coupon is None:
            results.append((code, None, str(NOT_FOUND)))
        elif code in fresh:
            results.append((code, fresh[code], ""))
        else:
            results.append((code, None, coupon_move_refusal(coupon, Coupon.Status.VOIDED)))
        seen.add(code)
    return results
