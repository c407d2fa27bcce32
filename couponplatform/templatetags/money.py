"""Money on the pages, one way everywhere: `{% load money %}` then `{{ value|amount:currency }}`.

An amount is shown with two decimals, thousands grouped, its currency code after it, on one
line (never wrapped) in tabular figures; in a table cell of class `money` it is
right-aligned. Python code that renders cells (django-tables2) calls `amount_html`. The
text itself comes from `couponplatform.money.fmt`, which messages and exports use too.
"""
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html

from couponplatform.money import fmt

register = template.Library()

EMPTY = "—"


def amount_html(value, currency: str = ""):
    """`<span class="amount">1,234.50 USD</span>`; "—" for no value."""
    if value is None or value == "":
        return EMPTY
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    return format_html('<span class="amount">{}</span>', fmt(number, currency or ""))


@register.filter(name="amount")
def amount(value, currency=""):
    """{{ coupon.balance|amount:coupon.currency }} → 1,234.50 USD, unwrapped."""
    return amount_html(value, currency)
