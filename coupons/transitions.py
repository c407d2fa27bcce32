"""The one mover of a coupon's status (Coupon.TRANSITIONS): the posting marks coupons used
up, expiry expires them and a partner admin voids one, each through `coupons_move`."""
from collections.abc import Mapping, Sequence

from django.dispatch import Signal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.services import audit_record_many
from couponplatform.db import chunks
from couponplatform.exceptions import InvalidTransitionError
from coupons.models import Coupon

Status = Coupon.Status

# Sent by every move, inside its transaction, after the UPDATE, with the coupons (their
# status set to `to` on the objects too) and `to`: the API writes coupon events here
# (coupons does not import api). A receiver that raises rolls the move back.
coupons_moved = Signal()
# What a move does, as the end of "… can be <verb>".
VERBS = {Status.USED_UP: gettext_lazy("used up"), Status.EXPIRED: gettext_lazy("expired"),
         Status.VOIDED: gettext_lazy("voided"),
         Status.AVAILABLE: gettext_lazy("made available again")}


def coupon_move_refusal(coupon: Coupon, to: str) -> str:
    """Why `coupon` can not move to `to`, in the words every caller shows."""
    sources = [str(Status(s).label).lower() for s, targets in Coupon.TRANSITIONS.items()
               if to in targets]
    values = {"code": coupon.code, "status": str(coupon.get_status_display()).lower(),
              "verb": VERBS.get(to, to)}
    if not sources:
        return _("Coupon %(code)s is %(status)s; no coupon can be %(verb)s.") % values
    values["which"] = _(" or ").join(sources)
    # English needs its article; other languages say both the same way.
    if values["which"][0] in "aeiou":
        return _("Coupon %(code)s is %(status)s; only an %(which)s coupon can be %(verb)s."
                 ) % values
    return _("Coupon %(code)s is %(status)s; only a %(which)s coupon can be %(verb)s.") % values


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
