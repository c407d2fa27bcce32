"""Amounts as text (couponplatform.money.parse_amount): ASCII digits with at most one
decimal point; none of Python's other notations. The template form, the admin's budget and
the usage import all read amounts through it."""
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import PlatformBudget
from billing.models import UsageRecord
from billing.usage_import import UsageImportError
from couponplatform.money import (
    AMOUNT_FORMAT_MESSAGE,
    AMOUNT_SEPARATOR_MESSAGE,
    AmountFormatError,
    parse_amount,
)
from coupons.models import CouponTemplate
from tests import factories as f
from tests.billing.helpers import products
from tests.coupons.helpers import template_form_data
from tests.factories import import_usage

# Everything here Decimal() reads as a number; none of it is an amount as people write one.
PYTHON_NOTATIONS = [
    "1_000", "1_000.00", "١٢", "۱۲", "१२", "１２", "12.５", "1e-2", "1E3", "1e400", "NaN",
    "nan", "sNaN", "Infinity", "-Infinity", "inf", "+5", "0x10", "1.2.3", "--1", "1 000",
    "", " ", "\u00a0", "12\x00", "٫5",
]


@pytest.mark.parametrize(("text", "expected"), [
    ("1000", Decimal("1000")), ("1000.50", Decimal("1000.50")), (" 12.5 ", Decimal("12.5")),
    ("0.5", Decimal("0.5")), (".5", Decimal("0.5")), ("5.", Decimal("5")),
    ("-3.00", Decimal("-3.00")), ("007", Decimal("7")), ("0", Decimal("0")),
])
def test_plain_amounts_are_read(text, expected):
    assert parse_amount(text) == expected
    assert parse_amount(text, thousands=True) == expected


@pytest.mark.parametrize("text", PYTHON_NOTATIONS)
def test_other_notations_are_refused_saying_how_to_write_an_amount(text):
    with pytest.raises(AmountFormatError) as info:
        parse_amount(text)
    assert info.value.message == AMOUNT_FORMAT_MESSAGE
    with pytest.raises(AmountFormatError):
        parse_amount(text, thousands=True)


def test_thousands_separators_are_refused_by_default_and_named():
    with pytest.raises(AmountFormatError) as info:
        parse_amount("1,000.50")
    assert info.value.message == AMOUNT_SEPARATOR_MESSAGE
    with pytest.raises(AmountFormatError) as info:
        parse_amount("1,5")  # 1.5 or 15? not a grouping of thousands: the general message
    assert info.value.message == AMOUNT_FORMAT_MESSAGE


@pytest.mark.parametrize(("text", "expected"), [
    ("1,000.25", Decimal("1000.25")), ("12,345,678", Decimal("12345678")),
    ("999", Decimal("999")), ("-1,000", Decimal("-1000")),
])
def test_with_thousands_commas_between_groups_of_three_are_read(text, expected):
    assert parse_amount(text, thousands=True) == expected


@pytest.mark.parametrize("text", ["1,00", "1,0,0", ",100", "100,", "1,000,00", "1,,000",
                                  "1000,000", "1.000,50"])
def test_with_thousands_other_commas_are_refused(text):
    with pytest.raises(AmountFormatError):
        parse_amount(text, thousands=True)


def test_a_very_long_text_is_refused_without_reading_it():
    with pytest.raises(AmountFormatError):
        parse_amount("1" * 10_000)


# ---------------------------------------------------------------------------------------
# Where amounts are typed and imported


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["face_value", "release_cap_amount", "min_bill_amount"])
@pytest.mark.parametrize("text", ["1_000", "١٢", "1e-2", "12.５", "1,000.00"])
def test_the_template_form_refuses_python_notations(client, dist_admin, field, text):
    client.force_login(dist_admin)
    data = template_form_data(**{field: text})
    if field == "min_bill_amount":
        data["kind"] = "threshold"
    response = client.post(reverse("coupons:template_create"), data)
    assert response.status_code == 200
    html = response.content.decode()
    expected = AMOUNT_SEPARATOR_MESSAGE if "," in text else AMOUNT_FORMAT_MESSAGE
    assert expected in html
    assert not CouponTemplate.objects.exists()


@pytest.mark.django_db
def test_the_template_form_reads_a_plain_amount(client, dist_admin):
    client.force_login(dist_admin)
    response = client.post(reverse("coupons:template_create"),
                           template_form_data(face_value=" 1000.5 "))
    assert response.status_code == 302
    assert CouponTemplate.objects.get().face_value == Decimal("1000.50")


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["1_000", "١٢٣", "1e3", "1,000"])
def test_the_admin_budget_refuses_python_notations(client, distributor, bd, text):
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    client.force_login(bd)
    response = client.post(reverse("admin:accounts_partner_change", args=[distributor.pk]), {
        "coupon_enabled": "on" if distributor.coupon_enabled else "",
        "requires_bd_approval": "on" if distributor.requires_bd_approval else "",
        "budgets-TOTAL_FORMS": "1", "budgets-INITIAL_FORMS": "1",
        "budgets-MIN_NUM_FORMS": "0", "budgets-MAX_NUM_FORMS": "1000",
        "budgets-0-id": budget.pk, "budgets-0-partner": distributor.pk,
        "budgets-0-currency": "USD", "budgets-0-amount": text, "_save": "Save",
    })
    assert response.status_code == 200
    html = response.content.decode()
    assert (AMOUNT_SEPARATOR_MESSAGE if "," in text else AMOUNT_FORMAT_MESSAGE) in html
    budget.refresh_from_db()
    assert budget.amount == Decimal("10000.00")


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["1_000", "١٢", "1e-2", "1,00", "1,0,0"])
def test_the_usage_import_refuses_python_notations(distributor, text):
    products("ecs")
    account = f.make_accounts(distributor, 1, prefix="AMT-")[0]
    with pytest.raises(UsageImportError) as info:
        import_usage([(account, "2025-03-01", "ecs", text)])
    message = info.value.message
    assert "is not a number" in message or "is not a plain number: write the digits 0–9" in message
    assert not UsageRecord.objects.exists()
