"""Coupon statuses billing moves besides used up (the posting's): expiry (the balance
stays, as breakage) and voiding (a partner admin withdraws the unused balance). Each goes
through the coupon's one mover, coupons/transitions.coupons_move."""
from datetime import date

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from accounts.models import PartnerMembership
from accounts.permissions import partner_writer_require
from billing.models import DailyBill
from couponplatform.exceptions import ApplicationError
from couponplatform.money import ZERO, cents
from coupons.locks import coupons_for_update
from coupons.models import Coupon
from coupons.transitions import coupons_move


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


def coupon_void(*, coupon: Coupon, acting_user, reason: str) -> Coupon:
    """A partner admin withdraws a coupon's unused balance; deductions already made stay."""
    reason = (reason or "").strip()
    partner_writer_require(
        acting_user, coupon.partner, roles=(PartnerMembership.Role.ADMIN,),
        not_a_member="You do not act for the partner that issued this coupon.",
        wrong_role="Only a partner admin can void a coupon.",
    )
    if not reason:
        raise ApplicationError("Give a reason for voiding the coupon.")
    with transaction.atomic():
        locked = coupons_for_update().get(pk=coupon.pk)
        # Both sides of the SET read the row as it was, so the balance moves over whole.
        coupons_move(
            coupons=[locked], to=Coupon.Status.VOIDED, action="coupon.void",
            actor=acting_user, reason=reason,
            changes={"voided_amount": cents(F("voided_amount") + F("balance")),
                     "balance": ZERO, "void_reason": reason},
            before={locked.pk: {"balance": locked.balance,
                                "voided_amount": locked.voided_amount}},
            after={locked.pk: {"balance": ZERO,
                               "voided_amount": locked.voided_amount + locked.balance}},
        )
        locked.refresh_from_db()
    return locked
