"""Dates as people type them on every form and filter: YYYY-MM-DD in a plain text input,
with the platform's time zone named beside it, never a browser date picker (which shows
the browser's locale, mm/dd/yyyy, and no time zone). Bad dates get a message saying how
to write one."""
import re

import django_filters
from django import forms
from django.conf import settings
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

DATE_INPUT_FORMAT = "%Y-%m-%d"
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
BAD_DATE = _("Enter the date as YYYY-MM-DD, for example 2026-03-31.")
NO_SUCH_DAY = _("There is no such day as %(value)s; enter a date as YYYY-MM-DD.")


class PlatformDateInput(forms.TextInput):
    """A text input for YYYY-MM-DD with the platform's time zone after it."""

    is_platform_date = True

    def __init__(self, attrs=None):
        defaults = {
            "placeholder": "YYYY-MM-DD", "pattern": DATE_PATTERN, "maxlength": "10",
            "inputmode": "numeric", "autocomplete": "off", "spellcheck": "false",
            "title": _("A date as YYYY-MM-DD, a day in the platform's time zone"),
        }
        super().__init__(attrs={**defaults, **(attrs or {})})

    def format_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime(DATE_INPUT_FORMAT)
        return super().format_value(value)

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        css = " ".join(filter(None, [self.attrs.get("class"), (attrs or {}).get("class")]))
        group = "input-group flex-nowrap"
        if "form-control-sm" in css:
            group += " input-group-sm"
        if "is-invalid" in css:
            # So the field's message after the group shows, as after an invalid input.
            group += " has-validation is-invalid"
        return format_html(
            '<div class="{}">{}<span class="input-group-text tz-name" title="{}">{}</span></div>',
            group, html, _("Dates are days in the platform's time zone"), settings.TIME_ZONE,
        )


class PlatformDateField(forms.DateField):
    """A date written YYYY-MM-DD (only that: 03/04/2026 is a different day by locale)."""

    widget = PlatformDateInput
    input_formats = [DATE_INPUT_FORMAT]
    default_error_messages = {"invalid": BAD_DATE}

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            text = value.strip()
            # ASCII digits only: strptime also reads "２０２６" and "2026-3-1".
            if not re.fullmatch(DATE_PATTERN, text, flags=re.ASCII):
                raise forms.ValidationError(BAD_DATE, code="invalid")
            try:
                return super().to_python(text)
            except forms.ValidationError:
                raise forms.ValidationError(NO_SUCH_DAY, code="invalid",
                                            params={"value": text}) from None
        return super().to_python(value)


class PlatformDateFilter(django_filters.DateFilter):
    """django-filter's DateFilter with the platform's date field."""

    field_class = PlatformDateField
