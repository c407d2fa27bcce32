"""Small template helpers for the consoles' look."""
from django import forms, template

register = template.Library()


@register.filter
def bs(field):
    """Render a bound field's widget with Bootstrap's small control classes."""
    widget = field.field.widget
    if isinstance(widget, forms.Select | forms.SelectMultiple):
        css = "form-select form-select-sm"
    elif isinstance(widget, forms.CheckboxInput):
        css = "form-check-input"
    else:
        css = "form-control form-control-sm"
    if field.errors:
        css += " is-invalid"
    existing = widget.attrs.get("class", "")
    return field.as_widget(attrs={"class": f"{existing} {css}".strip()})


@register.filter
def money(value, currency=""):
    """1234.5 → '1,234.50' (and the currency when given); rounding as money.py says."""
    from decimal import Decimal, InvalidOperation

    from couponplatform.money import fmt

    if value is None or value == "":
        return "—"
    try:
        return fmt(Decimal(str(value)), currency or "")
    except InvalidOperation:
        return value


@register.filter
def moment(value, default="—"):
    """A datetime in the platform's time zone, to the minute, in the one format."""
    from couponplatform.times import moment_text

    return moment_text(value or None, default)
