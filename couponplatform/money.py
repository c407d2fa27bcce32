"""Decimal rules for money: two places, half-up rounding, one place that quantizes, and
the one money column (Decimal(18, 2)) every model and query expression uses."""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import models
from django.db.models.functions import Round

PLACES = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000.00")
ZERO = Decimal("0.00")
CURRENCIES = [("USD", "USD"), ("CNY", "CNY"), ("EUR", "EUR"), ("SGD", "SGD")]


def quantize(value: Decimal) -> Decimal:
    """Round a computed amount (a discount, a share) to cents, half up."""
    return Decimal(value).quantize(PLACES, rounding=ROUND_HALF_UP)


def has_at_most_two_places(value: Decimal) -> bool:
    try:
        return value == value.quantize(PLACES)
    except InvalidOperation:
        return False


def fmt(value: Decimal | None, currency: str = "") -> str:
    """'1,234.50 USD' — for pages and messages."""
    if value is None:
        return "—"
    text = f"{quantize(value):,.2f}"
    return f"{text} {currency}".strip()


def money_field(**kwargs) -> models.DecimalField:
    """A money column, Decimal(18, 2), beside its currency; also the output field of money
    expressions (`money_field()`)."""
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


def cents(expression) -> Round:
    """SQL money arithmetic that stores whole cents.

    SQLite computes decimals as binary floats, so 1.00 − 0.43 − 0.57 can come out as
    −1e-16 and fail a CHECK; rounding to two places in the same statement keeps every
    stored amount a whole cent. On PostgreSQL's exact NUMERIC it changes nothing.
    """
    return Round(expression, 2, output_field=money_field())
