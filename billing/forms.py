"""Forms of the billing pages."""
from django import forms

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class CouponVoidForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
        help_text="Required; kept in the audit log and shown with the coupon.",
    )


class UsageUploadForm(forms.Form):
    file = forms.FileField(
        label="Usage CSV",
        help_text="Columns: account_id, date, product_code, amount[, currency]. A file with a "
                  "bad row is refused whole, naming each bad line.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 50 MB; split it.")
        return upload
