"""Forms of the billing pages."""
from datetime import date, datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.periods import month_end
from couponplatform.dates import PlatformDateField

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class CouponVoidForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label=_("Reason"),
        help_text=_("Required; kept in the audit log and shown with the coupon."),
    )


class BillFilterForm(forms.Form):
    """Bills' filters: one month, or a range of days (both may be set: their overlap).
    Bad input is a message on the field, and the page shows no rows."""

    month = forms.ChoiceField(required=False, label=_("Month"))
    date_from = PlatformDateField(required=False, label=_("From"))
    date_to = PlatformDateField(required=False, label=_("To"))

    def __init__(self, *args, months=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["month"].choices = [("", _("Any month"))] + [
            (f"{m:%Y-%m}", f"{m:%Y-%m}") for m in months]
        self.fields["month"].error_messages["invalid_choice"] = _(
            "Choose a month from the list (YYYY-MM, one with bills).")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def bounds(self) -> tuple[date | None, date | None]:
        """The first and last day the filters let through (None: no bound)."""
        cleaned = self.cleaned_data
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if cleaned.get("month"):
            first = datetime.strptime(cleaned["month"], "%Y-%m").date()
            last = month_end(first)
            start = max(start, first) if start else first
            end = min(end, last) if end else last
        return start, end


class UsageUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Usage CSV"),
        help_text=_("Columns: <code>account_id, date, product_code, amount[, currency]</code>. "
                    "A file with a bad row is refused whole, naming each bad line."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 50 MB; split it."))
        return upload
