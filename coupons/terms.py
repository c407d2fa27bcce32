"""What a coupon or a template is worth, said as what it is: cash as an amount, threshold
cash with its minimum, a discount as its rate, its cap per use and its uses, never as
cap × uses as if it were cash. One wording for the pages and the tables."""
from decimal import Decimal

from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from couponplatform.templatetags.money import amount_html
from coupons.models import Coupon, CouponKind, CouponTemplate


def _rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


def value_html(obj: Coupon | CouponTemplate):
    """The face of a coupon or template: "100.00 USD"; "20.00 USD on lines ≥ 200.00 USD";
    "15 % off, up to 30.00 USD a use"."""
    if obj.kind == CouponKind.DISCOUNT:
        cap = obj.cap_per_use if isinstance(obj, Coupon) else obj.face_value
        # xgettext:no-python-format
        return format_html(_('<span class="nowrap">{rate} % off,</span> '
                             '<span class="nowrap">up to {cap} a use</span>'),
                           rate=_rate(obj.discount_rate), cap=amount_html(cap, obj.currency))
    face = obj.amount if isinstance(obj, Coupon) else obj.face_value
    if obj.kind == CouponKind.THRESHOLD:
        return format_html(_('{face} <span class="nowrap">on lines ≥ {minimum}</span>'),
                           face=amount_html(face, obj.currency),
                           minimum=amount_html(obj.min_bill_amount, obj.currency))
    return amount_html(face, obj.currency)


def remaining_html(coupon: Coupon):
    """What a coupon can still pay: its balance; for a discount, its uses left
    (`Coupon.uses_available`)."""
    if coupon.kind == CouponKind.DISCOUNT:
        total = coupon.uses_total or 0
        return format_html(ngettext('<span class="nowrap">{left} of {total} use</span>',
                                    '<span class="nowrap">{left} of {total} uses</span>', total),
                           left=coupon.uses_available, total=total)
    return amount_html(coupon.balance, coupon.currency)
