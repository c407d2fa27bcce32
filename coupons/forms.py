"""Forms of the partner console: the template form and Issue Coupon's controls."""
import re

from crispy_forms.bootstrap import InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Fieldset, Layout, Row
from django import forms
from django.conf import settings

from accounts.models import Product, SubAccount
from couponplatform.fields import AmountField
from couponplatform.money import CURRENCIES
from couponplatform.text import count, named
from coupons.models import CostBearer, CouponKind, CouponTemplate
from coupons.rules import ACCOUNT_ID_MAX
from coupons.validators import template_terms_errors


class MoneyInput(AmountField):
    """An amount (read by couponplatform.money.parse_amount) whose limits are checked by
    coupons.validators, so the page shows the product's own wording ("at most 2 decimal
    places") rather than Django's."""


class CountInput(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric"}))
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
        help_text="What the coupon is worth, spent down across bills until used up.",
    )
    discount_rate = MoneyInput(
        label="Discount rate (%)", required=False, help_text="1–99 % off a bill line.",
    )
    discount_uses = CountInput(
        label="Number of uses", required=False,
        help_text="How many bill lines it can discount (one use per line).",
    )
    min_bill_amount = MoneyInput(
        label="Minimum bill line amount", required=False,
        help_text="The coupon applies only to a bill line of at least this amount.",
    )
    validity_type = forms.ChoiceField(
        choices=CouponTemplate.ValidityType.choices, widget=forms.RadioSelect,
        initial=CouponTemplate.ValidityType.RELATIVE, label="Counted as",
    )
    valid_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_days = CountInput(
        required=False, label="Valid for (days from release)",
        help_text="1–1095 days; the release day counts as day 1.",
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
    release_cap_count = CountInput(
        required=False, label="Release cap (coupons)",
        help_text="Optional: at most this many coupons released from the template.",
    )
    release_cap_amount = MoneyInput(
        required=False, label="Release cap (amount)",
        help_text="Optional: at most this total amount (in the template's currency) released "
        "from the template.",
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
                InlineRadios("kind"),
                Row(Column("currency", css_class="col-md-3"),
                    Column("face_value", css_class="col-md-4"),
                    Column("min_bill_amount", css_class="col-md-5 kind-threshold")),
                Row(Column("discount_rate", css_class="col-md-4"),
                    Column("discount_uses", css_class="col-md-4"), css_class="kind-discount"),
            ),
            Fieldset(
                "Validity",
                InlineRadios("validity_type"),
                Row(Column("valid_from", css_class="col-md-4"),
                    Column("valid_until", css_class="col-md-4"), css_class="validity-fixed"),
                Row(Column("valid_days", css_class="col-md-4"), css_class="validity-relative"),
            ),
            Fieldset("Products", "all_products", "products"),
            Fieldset(
                "Distribution",
                InlineRadios("cost_bearer"),
                InlineRadios("issue_limit"),
                Row(Column("release_cap_count", css_class="col-md-4"),
                    Column("release_cap_amount", css_class="col-md-4")),
            ),
        )

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


def paste_max_chars() -> int:
    """What the paste box takes: the most accounts a request holds, each ID as long as an
    account ID can be, with a separator."""
    return settings.ISSUE_MAX_ACCOUNTS * (ACCOUNT_ID_MAX + 2)


class PasteAccountsForm(forms.Form):
    """Account IDs pasted as text. A paste longer than a full request can be, or holding a
    value longer than any account ID, is refused whole, with a message that shows no more
    than the start of such a value (messages wait in the session)."""

    account_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "One account ID per line, or "
                                     "separated by commas or spaces"}),
        label="Paste account IDs",
    )

    def clean_account_ids(self):
        raw = self.cleaned_data["account_ids"]
        limit = paste_max_chars()
        if len(raw) > limit:
            raise forms.ValidationError(
                f"Paste at most {limit:,} characters (one request holds at most "
                f"{settings.ISSUE_MAX_ACCOUNTS:,} account IDs); this was {len(raw):,}. "
                "Nothing was added.",
            )
        ids = [part for part in re.split(r"[\s,;]+", raw) if part]
        if not ids:
            raise forms.ValidationError("Paste at least one account ID.")
        too_long = [part for part in ids if len(part) > ACCOUNT_ID_MAX]
        if too_long:
            raise forms.ValidationError(
                f"An account ID has at most {ACCOUNT_ID_MAX} characters; "
                f"{count(len(too_long), 'pasted value')} {'is' if len(too_long) == 1 else 'are'}"
                f" longer: {named(too_long)}. Nothing was added.",
            )
        return ids


