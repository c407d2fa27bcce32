"""The create-template form as its user meets it (PRODUCT §3): each error named by the field
the page shows for the chosen kind and validity, required terms marked, only the terms that
apply shown; a fixed window that has already ended refused (the rule of coupons/rules.py,
which the services and so the API apply), one that started before today allowed with a
warning."""
import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from coupons import rules
from coupons.forms import CouponTemplateForm
from coupons.models import CouponKind, CouponTemplate
from coupons.services import TemplateTermsError, coupon_template_create, coupon_template_update
from coupons.validators import KIND_TERMS, LABELS, VALIDITY_TERMS
from tests import factories as f
from tests.coupons.helpers import template_form_data
from tests.factories import nothing_written

pytestmark = pytest.mark.django_db

CREATE = "coupons:template_create"
KINDS = [CouponKind.CASH, CouponKind.THRESHOLD, CouponKind.DISCOUNT]
VALIDITIES = [CouponTemplate.ValidityType.FIXED, CouponTemplate.ValidityType.RELATIVE]

# A bad value of every term, each refused by the rules with a message of its own.
BAD = {
    "face_value": "0", "upper_limit": "-5", "discount_rate": "150", "discount_uses": "0",
    "min_bill_amount": "0.001", "valid_from": "2030-02-30", "valid_until": "",
    "valid_days": "2000", "release_cap_count": "0", "release_cap_amount": "-1",
}
ALWAYS_SHOWN = ("release_cap_count", "release_cap_amount")


class Rows(HTMLParser):
    """Each field's wrapper (div#div_id_<field>): its classes and the kinds, validities and
    the "unless" of the rows around it."""

    def __init__(self):
        super().__init__()
        self.stack, self.fields = [], {}

    def handle_starttag(self, tag, attrs):
        if tag != "div":
            return
        attrs = dict(attrs)
        context = dict(self.stack[-1]) if self.stack else {}
        for key in ("data-kinds", "data-validity", "data-unless"):
            if key in attrs:
                context[key] = attrs[key]
        self.stack.append(context)
        if (attrs.get("id") or "").startswith("div_id_"):
            self.fields[attrs["id"][len("div_id_"):]] = {**context,
                                                         "class": attrs.get("class", "")}

    def handle_endtag(self, tag):
        if tag == "div" and self.stack:
            self.stack.pop()


def rows_of(html: str) -> dict[str, dict]:
    parser = Rows()
    parser.feed(html)
    return parser.fields


def shown(row: dict, kind: str, validity: str, all_products: bool = False) -> bool:
    kinds, validities = row.get("data-kinds"), row.get("data-validity")
    return ((kinds is None or kind in kinds.split())
            and (validities is None or validity in validities.split())
            and not (row.get("data-unless") == "all_products" and all_products))


SUMMARY_ITEM = re.compile(r'<li><a href="#id_(\w+)" class="alert-link">([^<]*)</a>: ([^<]*)</li>')


def summary(html: str) -> list[tuple[str, str, str]]:
    """(field, label, message) of each item of the error summary."""
    box = html[html.index('id="form-errors"'):]
    box = box[:box.index("</div>")]
    return [(field, unescape(label), unescape(message))
            for field, label, message in SUMMARY_ITEM.findall(box)]


@pytest.mark.parametrize("validity", VALIDITIES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_error_names_the_field_shown_for_the_kind(client, dist_admin, kind, validity):
    """Every term bad at once: each error stands under a field the page shows for this kind
    and validity, is named by that field's label, and names no field the page hides."""
    client.force_login(dist_admin)
    with nothing_written():
        response = client.post(reverse(CREATE), template_form_data(
            **{**BAD, "kind": kind, "validity_type": validity}))
    html = response.content.decode()
    rows = rows_of(html)
    items = summary(html)
    expected = set(KIND_TERMS[kind]) | set(VALIDITY_TERMS[validity]) | set(ALWAYS_SHOWN)
    assert {field for field, _label, _message in items} == expected
    hidden_labels = {LABELS[name].lower() for name, row in rows.items()
                     if name in LABELS and not shown(row, kind, validity)}
    for field, label, message in items:
        assert shown(rows[field], kind, validity), f"{field} has an error but is hidden"
        assert label == LABELS[field] == CouponTemplateForm.base_fields[field].label
        named = {hidden for hidden in hidden_labels if hidden in message.lower()}
        assert not named, f"{label}: {message!r} names a hidden field: {named}"


def test_a_discounts_bad_upper_limit_is_named_upper_limit_not_face_value(client, dist_admin):
    client.force_login(dist_admin)
    with nothing_written():
        response = client.post(reverse(CREATE), template_form_data(
            kind="discount", face_value=None, upper_limit="1000000.01", discount_rate="10",
            discount_uses="2"))
    items = summary(response.content.decode())
    assert items == [("upper_limit", "Upper limit per use",
                      "The upper limit per use can be at most 1,000,000.00.")]


def test_a_discount_is_made_with_its_upper_limit_as_the_most_one_use_takes(client, dist_admin):
    client.force_login(dist_admin)
    client.post(reverse(CREATE), template_form_data(
        name="Upper limit page", kind="discount", face_value="99.00", upper_limit="12.50",
        discount_rate="20", discount_uses="4"))
    template = CouponTemplate.objects.get(name="Upper limit page")
    # The face value box a cash template would use is ignored; the upper limit counts.
    assert (template.face_value, template.discount_uses) == (Decimal("12.50"), 4)


def test_the_form_shows_each_term_only_for_its_kinds_and_validities_and_marks_it_required(
        client, dist_admin):
    client.force_login(dist_admin)
    html = client.get(reverse(CREATE)).content.decode()
    rows = rows_of(html)
    for kind in KINDS:
        for validity in VALIDITIES:
            terms = {name for name, row in rows.items()
                     if name in CouponTemplateForm.conditional_fields()
                     and shown(row, kind, validity)}
            assert terms == set(KIND_TERMS[kind]) | set(VALIDITY_TERMS[validity]) | {
                "products"}, (kind, validity)
    assert not shown(rows["products"], "cash", "relative", all_products=True)
    for name in CouponTemplateForm.conditional_fields():
        assert "cp-required" in rows[name]["class"], name
        assert 'aria-required="true"' in re.search(
            rf'<[^>]*name="{name}"[^>]*>', html).group()
    # The always required ones carry crispy-forms' own mark; the optional ones none.
    for name in ("name", "kind", "currency", "validity_type", "cost_bearer", "issue_limit"):
        assert re.search(rf'{re.escape(LABELS[name])}\s*<span class="asteriskField">\*</span>',
                         html), name
    for name in ("description", "release_cap_count", "release_cap_amount"):
        assert "cp-required" not in rows[name]["class"]
    assert "Fields marked * are required" in html


# ---------------------------------------------------------------------------------------
# A fixed window that has already ended, or started before today


def window(start_days: int, end_days: int) -> dict:
    today = timezone.localdate()
    return dict(validity_type="fixed", valid_from=today + timedelta(days=start_days),
                valid_until=today + timedelta(days=end_days))


def create(partner, user, **overrides) -> CouponTemplate:
    return coupon_template_create(partner=partner, acting_user=user,
                                  **f.template_fields(**overrides))


def test_the_service_refuses_a_window_that_has_already_ended(distributor, dist_admin):
    with nothing_written(), pytest.raises(TemplateTermsError) as refused:
        create(distributor, dist_admin, **window(-30, -1))
    message = refused.value.errors["valid_until"]
    yesterday = timezone.localdate() - timedelta(days=1)
    assert f"This window ended on {yesterday:%Y-%m-%d}" in message
    assert "no coupon could be issued from it" in message


def test_a_window_ending_today_or_later_is_accepted(distributor, dist_admin):
    assert create(distributor, dist_admin, name="Ends today", **window(-10, 0)).pk
    assert create(distributor, dist_admin, name="Ends later", **window(5, 40)).pk


def test_changing_a_template_to_an_ended_window_is_refused_but_an_old_one_can_be_renamed(
        distributor, dist_admin):
    template = create(distributor, dist_admin, **window(-10, 10))
    with nothing_written(), pytest.raises(TemplateTermsError) as refused:
        coupon_template_update(template=template, acting_user=dist_admin,
                               valid_until=timezone.localdate() - timedelta(days=2))
    assert "This window ended on" in refused.value.errors["valid_until"]
    old = f.ended(template, days=3)
    renamed = coupon_template_update(template=old, acting_user=dist_admin, name="Last year's")
    assert renamed.name == "Last year's"


def test_the_page_refuses_an_ended_window_under_valid_until(client, dist_admin):
    client.force_login(dist_admin)
    today = timezone.localdate()
    with nothing_written():
        response = client.post(reverse(CREATE), template_form_data(
            validity_type="fixed", valid_days=None,
            valid_from=(today - timedelta(days=20)).isoformat(),
            valid_until=(today - timedelta(days=1)).isoformat()))
    [(field, label, message)] = summary(response.content.decode())
    assert (field, label) == ("valid_until", "Valid until")
    assert "no coupon could be issued from it" in message


def test_a_window_that_started_before_today_is_made_with_a_warning(client, dist_admin):
    today = timezone.localdate()
    warning = rules.template_window_warning(
        validity_type="fixed", valid_from=today - timedelta(days=5),
        valid_until=today + timedelta(days=9), today=today)
    assert warning == (
        f"The validity window started on {today - timedelta(days=5):%Y-%m-%d}, before today "
        f"({today:%Y-%m-%d}): coupons issued from it now are valid until "
        f"{today + timedelta(days=9):%Y-%m-%d}, 10 days counting today.")
    client.force_login(dist_admin)
    response = client.post(reverse(CREATE), template_form_data(
        name="Started last week", validity_type="fixed", valid_days=None,
        valid_from=(today - timedelta(days=5)).isoformat(),
        valid_until=(today + timedelta(days=9)).isoformat()), follow=True)
    assert CouponTemplate.objects.filter(name="Started last week").exists()
    assert warning in unescape(response.content.decode())


@pytest.mark.parametrize(("start", "end"), [(0, 10), (3, 10)])
def test_no_warning_for_a_window_from_today_on(start, end):
    today = timezone.localdate()
    assert rules.template_window_warning(
        validity_type="fixed", valid_from=today + timedelta(days=start),
        valid_until=today + timedelta(days=end)) is None
    assert rules.template_window_warning(validity_type="relative", valid_from=None,
                                         valid_until=None) is None
