"""{% load coupon_terms %}: {{ coupon|coupon_value }}, {{ coupon|coupon_remaining }}
(coupons/terms.py)."""
from django import template

from coupons import terms

register = template.Library()


@register.filter
def coupon_value(obj):
    return terms.value_html(obj)


@register.filter
def coupon_remaining(coupon):
    return terms.remaining_html(coupon)
