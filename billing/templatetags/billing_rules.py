"""Billing's rules where other apps' pages show them: which bills a coupon can pay
(billing/payable.py). A template tag, so coupons' pages show billing's rule without the
coupons app importing billing."""
from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.payable import PayableBills, closed_months_all, payable_bills
from couponplatform.text import named

register = template.Library()


def _months(months) -> str:
    return named([f"{m:%Y-%m}" for m in months], limit=6)


def _notes(payable: PayableBills, *, new: bool) -> list[str]:
    """The closed and not-yet-closed months inside the validity, as sentences."""
    notes = []
    if payable.closed:
        n = len(payable.closed)
        if new:
            text = ngettext(
                "The bills of %(months)s, a closed month, are final: coupons released now "
                "never pay them.",
                "The bills of %(months)s, closed months, are final: coupons released now "
                "never pay them.", n)
        else:
            text = ngettext(
                "The bills of %(months)s, a closed month, are final: this coupon no longer "
                "pays them (what it paid before the close stays).",
                "The bills of %(months)s, closed months, are final: this coupon no longer "
                "pays them (what it paid before the close stays).", n)
        notes.append(text % {"months": _months(payable.closed)})
    if new and payable.ended_open:
        n = len(payable.ended_open)
        notes.append(ngettext(
            "%(months)s has ended but is not closed yet: its bills are paid only by coupons "
            "released before it is closed.",
            "%(months)s have ended but are not closed yet: their bills are paid only by "
            "coupons released before they are closed.", n,
        ) % {"months": _months(payable.ended_open)})
    return notes


def _context(payable: PayableBills, *, new: bool, heading: bool, **extra) -> dict:
    return {
        "payable": payable, "new": new, "heading": heading, "notes": _notes(payable, new=new),
        "time_zone": settings.TIME_ZONE, "title": (
            _("Which bills these coupons can pay") if new else _("Which bills this coupon can pay")
        ), **extra,
    }


@register.inclusion_tag("billing/_payable_bills.html")
def payable_bills_of_template(coupon_template, heading: bool = True):
    """Which bills a coupon of this template, released today, can pay."""
    today = timezone.localdate()
    valid_from, valid_until = coupon_template.validity_if_released(today)
    return _context(
        payable_bills(valid_from=valid_from, valid_until=valid_until, today=today),
        new=True, heading=heading,
        relative=coupon_template.validity_type == coupon_template.ValidityType.RELATIVE,
        valid_days=coupon_template.valid_days,
    )


@register.inclusion_tag("billing/_payable_bills.html", takes_context=True)
def payable_bills_of_coupon(context, coupon, heading: bool = False):
    """Which bills this released coupon can still pay. The closed months are read once per
    page, however many coupons it shows."""
    cache = context.render_context
    if "closed_months" not in cache:
        cache["closed_months"] = closed_months_all()
    return _context(
        payable_bills(valid_from=coupon.valid_from, valid_until=coupon.valid_until,
                      closed_months=cache["closed_months"]),
        new=False, heading=heading,
    )
