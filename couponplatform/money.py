"""Decimal rules for money: two places, half-up rounding, one place that quantizes."""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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
