"""The terms of a coupon template, checked the same way by forms and services."""
from datetime import date
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from couponplatform.money import CURRENCIES, MAX_AMOUNT, has_at_most_two_places
from coupons.models import CouponKind, CouponTemplate

MAX_RELATIVE_DAYS = 1095
MAX_RELEASE_CAP_COUNT = 2_147_483_647  # a PositiveIntegerField

# What each term is called where people enter it; the messages below name a term by its
# label, so an error reads the way the field it stands under is labelled. A discount keeps
# its upper limit per use in `face_value` (the most one use deducts), so the form shows that
# term as "upper_limit" (FORM_FIELD).
LABELS = {
    "name": gettext_noop("Name"),
    "kind": gettext_noop("Kind"),
    "currency": gettext_noop("Currency"),
    "face_value": gettext_noop("Face value"),
    "upper_limit": gettext_noop("Upper limit per use"),
    "discount_rate": gettext_noop("Discount rate (%)"),
    "discount_uses": gettext_noop("Number of uses"),
    "min_bill_amount": gettext_noop("Minimum bill amount"),
    "validity_type": gettext_noop("Counted as"),
    "valid_from": gettext_noop("Valid from"),
    "valid_until": gettext_noop("Valid until"),
    "valid_days": gettext_noop("Valid for (days from release)"),
    "products": gettext_noop("Products"),
    "cost_bearer": gettext_noop("Cost bearer"),
    "issue_limit": gettext_noop("Issue limit"),
    "release_cap_count": gettext_noop("Release cap (coupons)"),
    "release_cap_amount": gettext_noop("Release cap (amount)"),
}

# The terms each kind and each validity asks for (the others do not apply and are
# cleared): the form shows and marks only these, and the rules below ask only for them.
KIND_TERMS = {
    CouponKind.CASH: ("face_value",),
    CouponKind.THRESHOLD: ("face_value", "min_bill_amount"),
    CouponKind.DISCOUNT: ("upper_limit", "discount_rate", "discount_uses"),
}
VALIDITY_TERMS = {
    CouponTemplate.ValidityType.FIXED: ("valid_from", "valid_until"),
    CouponTemplate.ValidityType.RELATIVE: ("valid_days",),
}


def form_field(term: str, kind: str | None) -> str:
    """The form's field for a term of the template: a discount's `face_value` is its
    upper limit per use."""
    return "upper_limit" if term == "face_value" and kind == CouponKind.DISCOUNT else term


def _named(field: str) -> str:
    """A label inside a sentence: "The minimum bill amount must …"."""
    label = _(LABELS[field])
    return label[0].lower() + label[1:]


def _amount_error(value, field: str) -> str | None:
    label = _named(field)
    if value is None:
        return _("Enter the %(field)s.") % {"field": label}
    try:
        value = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return _("The %(field)s must be a number.") % {"field": label}
    if not value.is_finite():
        return _("The %(field)s must be a number.") % {"field": label}
    if value <= 0:
        return _("The %(field)s must be greater than 0.") % {"field": label}
    if value > MAX_AMOUNT:
        return _("The %(field)s can be at most 1,000,000.00.") % {"field": label}
    if not has_at_most_two_places(value):
        return _("The %(field)s can have at most 2 decimal places.") % {
            "field": label}
    return None


def template_terms_errors(data: dict) -> dict[str, str]:
    """Field → message for every broken rule of the template's terms; empty when valid."""
    errors: dict[str, str] = {}
    kind = data.get("kind")
    if kind not in CouponKind.values:
        errors["kind"] = _("Choose cash, threshold cash or discount.")
        return errors
    if data.get("currency") not in {code for code, _label in CURRENCIES}:
        errors["currency"] = _("Choose one of the platform's currencies.")
    if msg := _amount_error(data.get("face_value"), form_field("face_value", kind)):
        errors["face_value"] = msg
    if kind == CouponKind.DISCOUNT:
        rate = data.get("discount_rate")
        try:
            rate = Decimal(rate) if rate is not None else None
        except (InvalidOperation, TypeError, ValueError):
            rate = Decimal("NaN")
        if rate is None:
            errors["discount_rate"] = _("Enter the discount rate (1–99 %).")
        elif not rate.is_finite() or rate < 1 or rate > 99:
            errors["discount_rate"] = _("The discount rate must be between 1 and 99 %.")
        elif not has_at_most_two_places(rate):
            errors["discount_rate"] = _("The discount rate can have at most 2 decimal places.")
        uses = data.get("discount_uses")
        if uses is None or uses < 1 or uses > 1000:
            errors["discount_uses"] = _("A discount coupon can be used from 1 to 1,000 times.")
    if kind == CouponKind.THRESHOLD:
        if msg := _amount_error(data.get("min_bill_amount"), "min_bill_amount"):
            errors["min_bill_amount"] = msg
    validity = data.get("validity_type")
    if validity == CouponTemplate.ValidityType.FIXED:
        start, end = data.get("valid_from"), data.get("valid_until")
        if not isinstance(start, date):
            errors["valid_from"] = _("Enter the first day the coupon is valid.")
        if not isinstance(end, date):
            errors["valid_until"] = _("Enter the last day the coupon is valid.")
        if isinstance(start, date) and isinstance(end, date) and end < start:
            errors["valid_until"] = _("Valid until can not be before valid from.")
    elif validity == CouponTemplate.ValidityType.RELATIVE:
        days = data.get("valid_days")
        if days is None or days < 1 or days > MAX_RELATIVE_DAYS:
            errors["valid_days"] = _("Enter a number of days from 1 to %(max)s.") % {
                "max": f"{MAX_RELATIVE_DAYS:,}"}
    else:
        errors["validity_type"] = _("Choose a fixed window or a number of days from release.")
    if not data.get("all_products") and not data.get("products"):
        errors["products"] = _("Choose the products the coupon applies to, or all products.")
    cap_count = data.get("release_cap_count")
    if cap_count is not None and cap_count < 1:
        errors["release_cap_count"] = _("The release cap must be at least 1 coupon.")
    elif cap_count is not None and cap_count > MAX_RELEASE_CAP_COUNT:
        # The column's limit: past it the insert failed (a 500 on PostgreSQL).
        errors["release_cap_count"] = _("The release cap can be at most %(max)s coupons.") % {
            "max": f"{MAX_RELEASE_CAP_COUNT:,}"}
    cap_amount = data.get("release_cap_amount")
    if cap_amount is not None and (msg := _amount_error(cap_amount, "release_cap_amount")):
        errors["release_cap_amount"] = msg
    if data.get("cost_bearer") not in ("platform", "partner"):
        errors["cost_bearer"] = _("Choose who bears the cost.")
    if data.get("issue_limit") not in CouponTemplate.IssueLimit.values:
        errors["issue_limit"] = _("Choose Limited to 1 or Unlimited.")
    return errors
