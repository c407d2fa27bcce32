"""Form fields every app's forms share."""
from decimal import Decimal

from django import forms

from couponplatform.money import AmountFormatError, parse_amount


class AmountField(forms.DecimalField):
    """An amount as people write it (couponplatform.money.parse_amount): plain digits and a
    decimal point, nothing of Python's other notations ("1_000", "١٢", "1e-2", "NaN"), each
    refused with a message saying how to write it. Range and places stay the form's rules."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            return Decimal(value)  # an initial or a disabled field's value: a number already
        try:
            return parse_amount(value)
        except AmountFormatError as exc:
            raise forms.ValidationError(exc.message, code="invalid") from None
