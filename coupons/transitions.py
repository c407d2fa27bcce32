"""The one mover of a coupon's status (Coupon.TRANSITIONS): the posting marks coupons used
up, expiry expires them and a partner admin voids one, each through `coupons_move`."""
from collections.abc import Mapping, Sequence

from django.dispatch import Signal

from audit.services import audit_record_many
from couponplatform.db import chunks
from couponplatform.exceptions import InvalidTransitionError
from coupons.models import Coupon

Status = Coupon.Status

# Sent by every move, inside its transaction, after the UPDATE, with the coupons (their
# status set to `to` on the objects too) and `to`: the API writes coupon events here
# (coupons does not import api). A receiver that raises rolls the move back.
coupons_moved = Signal()
VERBS = {Status.USED_UP: "used up", Status.EXPIRED: "expired", Status.VOIDED: "voided",
         Status.AVAILABLE: "made available again"}


def coupon_move_refusal(coupon: Coupon, to: str) -> str:
    """Why `coupon` can not move to `to`, in the words every caller shows."""
    sources = [Status(s).label.lower() for s, targets in Coupon.TRANSITIONS.items()
               if to in targets]
    if not sources:
        return (f"Coupon {coupon.code} is {coupon.get_status_display().lower()}; no coupon "
                f"can be {VERBS.get(to, to)}.")
    which = " or ".join(sources)
    article = "an" if which[0] in "aeiou" else "a"
    return (f"Coupon {coupon.code} is {coupon.get_status_display().lower()}; only {article} "
            f"{which} coupon can be {VERBS.get(to, to)}.")


def coupons_move(
    *,
    coupons: Sequence[Coupon],
    to: str,
    action: str,
    actor=None,
    reason: str = "",
    changes: Mapping | None = None,
    before: Mapping[int, dict] | None = None,
    after: Mapping[int, dict] | None = None,
) -> None:
    """Move `coupons` to status `to`: refused, writing nothing, unless Coupon.TRANSITIONS
    allows it from each one's status; then one UPDATE (with `changes`, more columns set
    alike on every row, e.g. F() expressions) and one audit row per coupon.

    The caller holds the coupons' row locks (coupons/locks.coupons_for_update) and read
    them under it. `before` and `after` (by coupon id) add to each audit row's status.
    """
    for coupon in coupons:
        if not coupon.can_move_to(to):
            raise InvalidTransitionError(coupon_move_refusal(coupon, to))
    if not coupons:
        return
    for chunk in chunks(sorted(coupon.pk for coupon in coupons)):
        Coupon.objects.filter(pk__in=chunk).update(status=to, **(changes or {}))
    before, after = before or {}, after or {}
    audit_record_many(actor=actor, action=action, reason=reason, entries=[
        (coupon.partner_id, coupon, {"status": coupon.status, **before.get(coupon.pk, {})},
         {"status": to, **after.get(coupon.pk, {})})
        for coupon in coupons
    ])
    for coupon in coupons:
        coupon.status = to
    coupons_moved.send(sender=Coupon, coupons=coupons, to=to)
