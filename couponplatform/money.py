"""Decimal rules for money: two places, half-up rounding, one place that quantizes, and
the one money column (Decimal(18, 2)) every model and query expression uses, and the one
function that reads an amount typed or imported as text."""
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import models
from django.db.models.functions import Round
from django.utils.translation import gettext, gettext_noop

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


# ---------------------------------------------------------------------------------------
# Reading amounts from text

# Python's Decimal() reads far more than people write: "1_000", Arabic-Indic and other
# non-ASCII digits, "1e-2", "NaN", "Infinity". An amount is ASCII digits with at most one
# decimal point (and a minus sign, so a negative amount is refused by its range check, not
# as gibberish). Thousands separators: refused where people type amounts (the forms and the
# API), where "1,5" may mean 1.5 or 15 by the writer's locale; the usage import accepts
# commas between groups of three ("1,000.25", as billing exports write them) and no other.
_PLAIN = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?\Z")
AMOUNT_TEXT_MAX = 40  # characters: far past any amount the platform holds

# The words in English, marked for the catalog; AmountFormatError says them in the active
# language.
AMOUNT_FORMAT_MESSAGE = gettext_noop("Enter a number in the digits 0–9 with at most one "
                                     "decimal point, such as 1000 or 1000.50.")
AMOUNT_SEPARATOR_MESSAGE = gettext_noop("Enter the amount without thousands separators, such "
                                        "as 1000.50.")


class AmountFormatError(ValueError):
    """The text is not an amount; `message` says how to write one."""

    def __init__(self, message: str):
        message = gettext(message)  # in the language of the request that raised it
        super().__init__(message)
        self.message = message


def parse_amount(text: str, *, thousands: bool = False) -> Decimal:
    """The Decimal an amount typed or imported as text stands for, or AmountFormatError.

    Accepts ASCII digits with at most one decimal point, an optional leading minus sign and
    surrounding whitespace; with `thousands`, commas between groups of three digits. Range
    and decimal places are the caller's rules (they differ: a face value, a budget, usage).
    """
    value = str(text).strip()
    if len(value) > AMOUNT_TEXT_MAX or not value:
        raise AmountFormatError(AMOUNT_FORMAT_MESSAGE)
    if _PLAIN.match(value):
        return Decimal(value)
    if "," in value:
        if thousands and _GROUPED.match(value):
            return Decimal(value.replace(",", ""))
        if not thousands and _GROUPED.match(value):
            raise AmountFormatError(AMOUNT_SEPARATOR_MESSAGE)
    raise AmountFormatError(AMOUNT_FORMAT_MESSAGE)
