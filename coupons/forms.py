"""Forms of the partner console: the template form and Issue Coupon's controls."""
import re

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Fieldset, Layout, Row
from django import forms

from couponplatform.accounts.models import Product, SubAccount
from couponplatform.money import CURRENCIES, MAX_AMOUNT
from coupons.models import CostBearer, CouponKind, CouponTemplate
from coupons.validators import template_terms_errors


class MoneyInput(forms.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)


class CouponTemplateForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                  max_length=2000)
    kind = forms.ChoiceField(choices=CouponKind.choices, widget=forms.RadioSelect,
                             initial=CouponKind.CASH)
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD")
    face_value = MoneyInput(
        label="Face value", required=False,
        help_text="Cash: the coupon's value. Discount: the most one use can take off.",
    )
    discount_rate = forms.DecimalField(
        label="Discount rate (%)", required=False, max_digits=5, decimal_places=2,
        help_text="Discount coupons only: 1–99 % off a bill line.",
    )
    discount_uses = forms.IntegerField(
        label="Number of uses", required=False, min_value=1, max_value=1000,
        help_text="Discount coupons only: how many bill lines it can discount.",
    )
    min_bill_amount = MoneyInput(
        label="Minimum bill line amount", required=False,
        help_text="Threshold cash only: applies to a bill line of at least this amount.",
    )
    validity_type = forms.ChoiceField(
        choices=CouponTemplate.ValidityType.choices, widget=forms.RadioSelect,
        initial=CouponTemplate.ValidityType.RELATIVE, label="Validity",
    )
    valid_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_days = forms.IntegerField(
        required=False, label="Valid for (days from release)", min_value=1, max_value=1095,
    )
    all_products = forms.BooleanField(required=False, initial=True, label="All products")
    products = forms.ModelMultipleChoiceField(
        queryset=Product.objects.all(), required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="When not all products: the products the coupon applies to.",
    )
    cost_bearer = forms.ChoiceField(
        choices=CostBearer.choices, widget=forms.RadioSelect, initial=CostBearer.PARTNER,
    )
    issue_limit = forms.ChoiceField(
        choices=CouponTemplate.IssueLimit.choices, widget=forms.RadioSelect,
        initial=CouponTemplate.IssueLimit.ONE,
        help_text="Limited to 1: a sub-account can receive a coupon from this template once.",
    )
    release_cap_count = forms.IntegerField(
        required=False, min_value=1, label="Release cap (coupons)",
        help_text="Optional: at most this many coupons released from the template.",
    )
    release_cap_amount = MoneyInput(
        required=False, label="Release cap (amount)",
        help_text="Optional: at most this total amount released from the template.",
    )

    def __init__(self, *args, platform_allowed: bool = True, frozen: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.frozen = frozen
        if not platform_allowed:
            self.fields["cost_bearer"].choices = [(CostBearer.PARTNER, CostBearer.PARTNER.label)]
            self.fields["cost_bearer"].help_text = (
                "Platform-borne templates need a tier-1 partner with a platform budget from "
                "the BD."
            )
        if frozen:
            for name in CouponTemplate.MONEY_FIELDS + ("products",):
                if name in self.fields:
                    self.fields[name].disabled = True
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset("Template", "name", "description"),
            Fieldset(
                "Value",
                "kind",
                Row(Column("currency", css_class="col-md-3"),
                    Column("face_value", css_class="col-md-4")),
                Div(Row(Column("discount_rate", css_class="col-md-4"),
                        Column("discount_uses", css_class="col-md-4")),
                    css_class="kind-discount"),
                Div("min_bill_amount", css_class="kind-threshold"),
            ),
            Fieldset(
                "Validity",
                "validity_type",
                Row(Column("valid_from", css_class="col-md-4"),
                    Column("valid_until", css_class="col-md-4"), css_class="validity-fixed"),
                Div("valid_days", css_class="validity-relative"),
            ),
            Fieldset("Products", "all_products", "products"),
            Fieldset(
                "Distribution",
                "cost_bearer",
                "issue_limit",
                Row(Column("release_cap_count", css_class="col-md-4"),
                    Column("release_cap_amount", css_class="col-md-4")),
            ),
        )

    def clean_face_value(self):
        value = self.cleaned_data.get("face_value")
        if value is not None and value > MAX_AMOUNT:
            raise forms.ValidationError("The face value can be at most 1,000,000.00.")
        return value

    def clean(self):
        data = super().clean()
        if self.frozen:
            return data
        for field, message in template_terms_errors(data).items():
            if field not in self.errors:
                self.add_error(field if field in self.fields else None, message)
        return data


class AccountSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Name or account ID")
    type = forms.ChoiceField(
        required=False, choices=[("", "All types"), *SubAccount.Type.choices], label="Type",
    )


class PasteAccountsForm(forms.Form):
    account_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "One account ID per line, or "
                                     "separated by commas or spaces"}),
        label="Paste account IDs",
        max_length=500_000,
    )

    def clean_account_ids(self):


        raw = self.cleaned_data["account_ids"]
        ids = [part for part in re.split(r"[\s,;]+", raw) if part]
        if not ids:
            raise forms.ValidationError("Paste at least one account ID.")
        return ids


