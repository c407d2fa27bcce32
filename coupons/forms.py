"""Forms of the partner console: the template form and Issue Coupon's controls."""
import re

from crispy_forms.bootstrap import InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Field, Fieldset, Layout, Row
from django import forms
from django.conf import settings
from django.utils.timezone import localdate
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import Product, SubAccount
from couponplatform.dates import PlatformDateField
from couponplatform.fields import AmountField
from couponplatform.money import CURRENCIES
from couponplatform.text import named
from coupons.models import CostBearer, CouponKind, CouponTemplate
from coupons.rules import ACCOUNT_ID_MAX
from coupons.validators import (
    KIND_TERMS,
    LABELS,
    VALIDITY_TERMS,
    form_field,
    template_terms_errors,
)


class MoneyInput(AmountField):
    """An amount (read by couponplatform.money.parse_amount) whose limits are checked by
    coupons.validators, so the page shows the product's own wording ("at most 2 decimal
    places") rather than Django's."""


class CountInput(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric"}))
        super().__init__(**kwargs)


def _label(field: str) -> str:
    return gettext_lazy(LABELS[field])  # the words are marked in coupons/validators.py


class CouponTemplateForm(forms.Form):
    """The template's terms. Which of them apply (and are required) follows the kind and
    the validity (coupons/validators KIND_TERMS, VALIDITY_TERMS): their rows carry
    `data-kinds` / `data-validity`, which static/js/template_form.js reads to show only
    those, and `cp-required` marks them; the server checks the same whatever is shown."""

    name = forms.CharField(max_length=120, label=_label("name"))
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                  max_length=2000, label=gettext_lazy("Description"))
    kind = forms.ChoiceField(choices=CouponKind.choices, widget=forms.RadioSelect,
                             initial=CouponKind.CASH, label=_label("kind"))
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD", label=_label("currency"))
    FACE_VALUE_HELP = {
        CouponKind.CASH: gettext_lazy(
            "What the coupon is worth, spent down across bills until used up."),
        CouponKind.THRESHOLD: gettext_lazy(
            "What the coupon takes off a bill line that reaches the minimum amount."),
    }
    face_value = MoneyInput(
        label=_label("face_value"), required=False, help_text=FACE_VALUE_HELP[CouponKind.CASH],
        # static/js/template_form.js shows the chosen kind's help.
        widget=forms.TextInput(attrs={
            "inputmode": "decimal", **{f"data-help-{kind}": text
                                       for kind, text in FACE_VALUE_HELP.items()}}),
    )
    upper_limit = MoneyInput(
        label=_label("upper_limit"), required=False,
        help_text=gettext_lazy("The most one use can take off a bill line."),
    )
    discount_rate = MoneyInput(
        label=_label("discount_rate"), required=False,
        # xgettext:no-python-format
        help_text=gettext_lazy("1–99 % off a bill line."),
    )
    discount_uses = CountInput(
        label=_label("discount_uses"), required=False,
        help_text=gettext_lazy("How many bill lines it can discount (one use per line)."),
    )
    min_bill_amount = MoneyInput(
        label=_label("min_bill_amount"), required=False,
        help_text=gettext_lazy(
            "The coupon applies only to a bill line of at least this amount."),
    )
    validity_type = forms.ChoiceField(
        choices=CouponTemplate.ValidityType.choices, widget=forms.RadioSelect,
        initial=CouponTemplate.ValidityType.RELATIVE, label=_label("validity_type"),
    )
    valid_from = PlatformDateField(required=False, label=_label("valid_from"))
    valid_until = PlatformDateField(required=False, label=_label("valid_until"))
    valid_days = CountInput(
        required=False, label=_label("valid_days"),
        help_text=gettext_lazy("1–1,095 days; the release day counts as day 1."),
    )
    all_products = forms.BooleanField(required=False, initial=True,
                                      label=gettext_lazy("All products"))
    products = forms.ModelMultipleChoiceField(
        queryset=Product.objects.all(), required=False, label=_label("products"),
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=gettext_lazy("The products the coupon applies to."),
    )
    cost_bearer = forms.ChoiceField(
        choices=CostBearer.choices, widget=forms.RadioSelect, initial=CostBearer.PARTNER,
        label=_label("cost_bearer"),
    )
    issue_limit = forms.ChoiceField(
        choices=CouponTemplate.IssueLimit.choices, widget=forms.RadioSelect,
        initial=CouponTemplate.IssueLimit.ONE, label=_label("issue_limit"),
        help_text=gettext_lazy(
            "Limited to 1: a sub-account can receive a coupon from this template once."),
    )
    release_cap_count = CountInput(
        required=False, label=_label("release_cap_count"),
        help_text=gettext_lazy(
            "Optional: at most this many coupons released from the template."),
    )
    release_cap_amount = MoneyInput(
        required=False, label=_label("release_cap_amount"),
        help_text=gettext_lazy("Optional: at most this total amount (in the template's currency) "
                               "released from the template."),
    )

    def __init__(self, *args, platform_allowed: bool = True, frozen: bool = False,
                 today=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.frozen = frozen
        if not platform_allowed:
            self.fields["cost_bearer"].choices = [(CostBearer.PARTNER, CostBearer.PARTNER.label)]
            self.fields["cost_bearer"].help_text = _(
                "Platform-borne templates need a tier-1 partner with a platform budget from "
                "the BD."
            )
        if frozen:
            for name in CouponTemplate.MONEY_FIELDS + ("products", "upper_limit"):
                if name in self.fields:
                    self.fields[name].disabled = True
        for name in self.conditional_fields():
            self.fields[name].widget.attrs["aria-required"] = "true"
        kind = self.data.get("kind") if self.is_bound else None
        if kind in self.FACE_VALUE_HELP:
            self.fields["face_value"].help_text = self.FACE_VALUE_HELP[kind]
        # The platform's today, for the page's note on a window that starts in the past.
        self.fields["valid_from"].widget.attrs["data-today"] = f"{today or localdate():%Y-%m-%d}"
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(_("Template"), "name", "description"),
            Fieldset(
                _("Value"),
                InlineRadios("kind"),
                Row(Column("currency", css_class="col-md-3"),
                    self._term("face_value", "col-md-4"),
                    self._term("upper_limit", "col-md-4"),
                    self._term("min_bill_amount", "col-md-5")),
                Row(self._term("discount_rate", "col-md-4"),
                    self._term("discount_uses", "col-md-4")),
            ),
            Fieldset(
                _("Validity"),
                InlineRadios("validity_type"),
                # Wide enough for YYYY-MM-DD and the time zone's name beside it.
                Row(self._term("valid_from", "col-md-6 col-xl-5"),
                    self._term("valid_until", "col-md-6 col-xl-5")),
                Row(self._term("valid_days", "col-md-4")),
            ),
            Fieldset(_("Products"), "all_products",
                     Div(Field("products", wrapper_class="cp-required"),
                         data_unless="all_products")),
            Fieldset(
                _("Distribution"),
                InlineRadios("cost_bearer"),
                InlineRadios("issue_limit"),
                Row(Column("release_cap_count", css_class="col-md-4"),
                    Column("release_cap_amount", css_class="col-md-4")),
            ),
        )

    @staticmethod
    def conditional_fields() -> list[str]:
        """Fields required only for some kinds or validities (or without all products)."""
        terms = [t for ts in (*KIND_TERMS.values(), *VALIDITY_TERMS.values()) for t in ts]
        return list(dict.fromkeys(terms)) + ["products"]

    def hidden_terms(self, data: dict) -> list[str]:
        """The terms that do not apply to the chosen kind and validity (none while either
        is missing or unknown: then everything is shown and checked)."""
        kind, validity = self.data.get("kind"), self.data.get("validity_type")
        if kind not in KIND_TERMS or validity not in VALIDITY_TERMS:
            return []
        shown = {*KIND_TERMS[kind], *VALIDITY_TERMS[validity]}
        hidden = [name for name in self.conditional_fields()
                  if name not in shown and name != "products"]
        if data.get("all_products"):
            hidden.append("products")
        return hidden

    @staticmethod
    def _term(name: str, css_class: str) -> Column:
        """A term's column, saying which kinds or validities it applies to."""
        attrs = {}
        kinds = [k for k, terms in KIND_TERMS.items() if name in terms]
        if kinds:
            attrs["data_kinds"] = " ".join(kinds)
        validities = [v for v, terms in VALIDITY_TERMS.items() if name in terms]
        if validities:
            attrs["data_validity"] = " ".join(validities)
        return Column(Field(name, wrapper_class="cp-required"), css_class=css_class, **attrs)

    def clean(self):
        data = super().clean()
        if self.frozen:
            return data
        # What a term the page hides holds (typed before the kind or validity changed) is
        # neither checked nor kept: an error under a hidden field could not be fixed.
        for name in self.hidden_terms(data):
            self._errors.pop(name, None)
            data[name] = None
        if data.get("kind") == CouponKind.DISCOUNT:
            # A discount's upper limit per use is its face value (validators.LABELS).
            data["face_value"] = data.get("upper_limit")
        self.add_terms_errors(template_terms_errors(data))
        return data

    def add_terms_errors(self, errors: dict[str, str]) -> None:
        """Put each term's message under the field the page shows for it."""
        kind = self.cleaned_data.get("kind") if hasattr(self, "cleaned_data") else None
        for term, message in errors.items():
            field = form_field(term, kind)
            if field not in self.fields:
                self.add_error(None, message)
            elif field not in self.errors:
                self.add_error(field, message)

    def service_kwargs(self) -> dict:
        """The cleaned terms as the template services take them."""
        data = {k: v for k, v in self.cleaned_data.items() if k != "upper_limit"}
        data["products"] = list(data.get("products") or [])
        return data


class AccountSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100,
                        label=gettext_lazy("Name or account ID"))
    type = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("All types")), *SubAccount.Type.choices],
        label=gettext_lazy("Type"),
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
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": gettext_lazy(
            "One account ID per line, or separated by commas or spaces")}),
        label=gettext_lazy("Paste account IDs"),
    )

    def clean_account_ids(self):
        raw = self.cleaned_data["account_ids"]
        limit = paste_max_chars()
        if len(raw) > limit:
            raise forms.ValidationError(
                _("Paste at most %(limit)s characters (one request holds at most %(max)s "
                  "account IDs); this was %(length)s. Nothing was added.") % {
                    "limit": f"{limit:,}", "max": f"{settings.ISSUE_MAX_ACCOUNTS:,}",
                    "length": f"{len(raw):,}"},
            )
        ids = [part for part in re.split(r"[\s,;]+", raw) if part]
        if not ids:
            raise forms.ValidationError(_("Paste at least one account ID."))
        too_long = [part for part in ids if len(part) > ACCOUNT_ID_MAX]
        if too_long:
            raise forms.ValidationError(ngettext(
                "An account ID has at most %(max)s characters; %(n)s pasted value is longer: "
                "%(values)s. Nothing was added.",
                "An account ID has at most %(max)s characters; %(n)s pasted values are longer: "
                "%(values)s. Nothing was added.", len(too_long),
            ) % {"max": ACCOUNT_ID_MAX, "n": f"{len(too_long):,}", "values": named(too_long)})
        return ids


