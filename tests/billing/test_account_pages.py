"""The sub-account's console beyond the reference pages: the monthly bill of a month still
open (the month so far, labelled not closed, summed as the close will sum it), Bills'
month and date filters, the balance it can spend and what expires soon on top of Coupons,
and who voided a coupon, when and why on the Voided tab."""
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.coupon_status import coupon_void
from billing.models import MonthlyBill
from billing.month_close import month_close
from couponplatform.dates import BAD_DATE
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.billing.page_helpers import D

pytestmark = pytest.mark.django_db

BILLS = "/billing/bills/"


def daily_url(day: date) -> str:
    return reverse("billing:daily_bill", args=[f"{day:%Y-%m-%d}"])


def monthly_url(day: date) -> str:
    return reverse("billing:monthly_bill", args=[f"{day:%Y-%m}"])


@pytest.fixture
def shop(distributor, dist_admin):
    f.make_product("ecs")
    f.make_product("oss")
    account, other = f.make_accounts(distributor, 2, prefix="AP-")
    return account, other, f.make_subaccount_user(account, "ap-user")


@pytest.fixture
def open_month(shop):
    """Usage on two days of the current month (open) and one of the last (closed), paid
    in part by a coupon."""
    account, other, user = shop
    today = timezone.localdate()
    first = today.replace(day=1)
    days = [first + timedelta(days=2), first + timedelta(days=9)]
    last_month = first - timedelta(days=5)
    coupon = f.make_coupon(account, amount="30.00", valid_from=last_month - timedelta(days=1),
                           valid_until=today + timedelta(days=90))
    f.bill_usage([
        (account, last_month, "ecs", "4.00"),
        (account, days[0], "ecs", "12.50"), (account, days[0], "oss", "3.25"),
        (account, days[1], "ecs", "20.00"), (other, days[1], "ecs", "99.00"),
    ])
    month_close(month=last_month.replace(day=1))
    return days, coupon


def test_a_daily_bill_of_an_open_month_links_to_its_month_so_far_labelled_not_closed(
    client, shop, open_month,
):
    account, _, user = shop
    days, coupon = open_month
    client.force_login(user)
    daily = ph.parse(client.get(daily_url(days[0])))
    link = daily.find("a", id="monthly-link")
    assert link.attrs["href"] == monthly_url(days[0])
    assert "not closed" in link.text()
    response = client.get(link.attrs["href"])
    assert response.status_code == 200  # it was 404 while the month was open
    root = ph.parse(response)
    assert "not closed" in root.find("h1").text()
    assert root.find(id="provisional-note")
    # The month so far: each product and the total summed from the daily bills, and what
    # the coupon paid; the other account's usage is not in it.
    rows = ph.table_rows(root, id="bill-lines")
    assert [row[0].split()[0] for row in rows] == ["ecs", "oss"]
    assert [ph.amounts(row)[1:] for row in rows] == [[D("32.50"), D("22.75"), D("9.75")],
                                                     [D("3.25"), D("3.25"), D("0.00")]]
    [total] = ph.table_rows(root, id="bill-lines", section="tfoot")
    assert ph.amounts(total)[1:] == [D("35.75"), D("26.00"), D("9.75")]
    [per_coupon] = ph.table_rows(root, id="coupon-deductions")
    assert coupon.code in per_coupon[0] and ph.money(per_coupon[1]) == D("26.00")
    assert not MonthlyBill.objects.filter(month=days[0].replace(day=1)).exists()


def test_the_month_so_far_equals_the_bill_the_close_makes(client, shop, open_month):
    account, _, user = shop
    days, _ = open_month
    client.force_login(user)
    before = ph.parse(client.get(monthly_url(days[0])))
    so_far = (ph.table_rows(before, id="bill-lines"),
              ph.table_rows(before, id="bill-lines", section="tfoot")[0][1:],
              ph.table_rows(before, id="coupon-deductions"))
    month_end = (days[0].replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(1)
    month_close(month=days[0].replace(day=1), today=month_end + timedelta(days=1))
    after = ph.parse(client.get(monthly_url(days[0])))
    assert "not closed" not in after.find("h1").text()
    assert not after.find_all(id="provisional-note")
    assert (ph.table_rows(after, id="bill-lines"),
            ph.table_rows(after, id="bill-lines", section="tfoot")[0][1:],
            ph.table_rows(after, id="coupon-deductions")) == so_far


def test_bills_lists_the_open_month_so_far_above_the_closed_ones(client, shop, open_month):
    _, _, user = shop
    days, _ = open_month
    client.force_login(user)
    root = ph.parse(client.get(BILLS))
    rows = ph.table_rows(root, id="monthly-bills")
    assert rows[0][0] == f"{days[0]:%Y-%m} so far, not closed"
    assert ph.amounts(rows[0])[1:] == [D("35.75"), D("26.00"), D("9.75")]
    assert rows[1][0] == f"{days[0].replace(day=1) - timedelta(days=1):%Y-%m}"
    for href in (a.attrs["href"] for a in root.find("table", id="monthly-bills").find_all("a")):
        assert client.get(href).status_code == 200, href


def test_bills_filter_by_month_and_by_date_range(client, shop, open_month):
    _, _, user = shop
    days, _ = open_month
    client.force_login(user)
    last_month = days[0].replace(day=1) - timedelta(days=5)

    def shown(**params):
        root = ph.parse(client.get(BILLS, params))
        return ([r[0] for r in ph.table_rows(root, id="daily-bills")],
                [r[0].split()[0] for r in ph.table_rows(root, id="monthly-bills")])

    everything = shown()
    assert everything[0] == [f"{d:%Y-%m-%d}" for d in (days[1], days[0], last_month)]
    assert shown(month=f"{last_month:%Y-%m}") == ([f"{last_month:%Y-%m-%d}"],
                                                  [f"{last_month:%Y-%m}"])
    assert shown(month=f"{days[0]:%Y-%m}")[0] == [f"{days[1]:%Y-%m-%d}", f"{days[0]:%Y-%m-%d}"]
    assert shown(date_from=f"{days[0]:%Y-%m-%d}", date_to=f"{days[0]:%Y-%m-%d}") == (
        [f"{days[0]:%Y-%m-%d}"], [f"{days[0]:%Y-%m}"])
    assert shown(date_to=f"{last_month:%Y-%m-%d}")[0] == [f"{last_month:%Y-%m-%d}"]
    # Month and range together: their overlap.
    assert shown(month=f"{days[0]:%Y-%m}", date_from=f"{days[1]:%Y-%m-%d}")[0] == [
        f"{days[1]:%Y-%m-%d}"]


@pytest.mark.parametrize(("params", "message"), [
    ({"month": "2026-13"}, "Choose a month from the list"),
    ({"month": "1999-01"}, "Choose a month from the list"),
    ({"date_from": "2026-02-30"},
     "There is no such day as 2026-02-30; enter a date as YYYY-MM-DD."),
    ({"date_to": "yesterday"}, str(BAD_DATE)),
    ({"date_from": "2026-06-10", "date_to": "2026-06-01"}, "The end date is before the start"),
    ({"date_from": "99999-01-01"}, str(BAD_DATE)),
])
def test_bad_bill_filters_get_a_clear_message_and_no_rows_never_a_500(
    client, shop, open_month, params, message,
):
    _, _, user = shop
    client.force_login(user)
    response = client.get(BILLS, params)
    assert response.status_code == 200
    root = ph.parse(response)
    assert message in root.find("form", id="bill-filters").text()
    assert ph.table_rows(root, id="daily-bills") == [["Correct the filters above to see bills."]]


def test_coupons_shows_the_balance_per_currency_and_what_expires_soon(client, shop):
    account, other, user = shop
    today = timezone.localdate()
    soon = f.make_coupon(account, amount="40.00", valid_from=today,
                         valid_until=today + timedelta(days=10))
    f.make_coupon(account, amount="60.00", valid_from=today,
                  valid_until=today + timedelta(days=200))
    euro = f.make_coupon(account, amount="7.00", currency="EUR", valid_from=today,
                         valid_until=today + timedelta(days=29))
    f.make_coupon(account, kind="discount", rate=15, cap="30.00", uses=5, valid_from=today,
                  valid_until=today + timedelta(days=300))
    gone = f.make_coupon(account, amount="1000.00", valid_from=today,
                         valid_until=today + timedelta(days=5))
    Coupon.objects.filter(pk=gone.pk).update(  # voided: not spendable
        status="voided", balance=0, voided_amount=D("1000.00"))
    f.make_coupon(other, amount="500.00", valid_from=today, valid_until=today)  # not ours
    client.force_login(user)
    root = ph.parse(client.get("/billing/coupons/"))
    figures = root.find(id="coupon-figures").text()
    assert "100.00 USD in 2 cash coupons · plus 1 discount coupon (5 uses left)" in figures
    assert "7.00 EUR in 1 cash coupon" in figures
    assert "150.00" not in figures  # the discount's cap × uses is not cash
    expiring = root.find(id="expiring-soon")
    assert "Expiring within 30 days" in expiring.text()
    rows = ph.table_rows(expiring, table=expiring.find("table"))
    assert [r[0].split()[-1] for r in rows] == [soon.code, euro.code]
    assert [r[2] for r in rows] == [f"until {today + timedelta(days=10):%Y-%m-%d}",
                                    f"until {today + timedelta(days=29):%Y-%m-%d}"]
    assert "40.00 USD" in expiring.text() and "7.00 EUR" in expiring.text()
    assert "500.00" not in expiring.text() and "1,000.00" not in expiring.text()


def test_a_discount_coupon_shows_its_rate_cap_per_use_and_uses_left(client, shop):
    account, _, user = shop
    f.make_coupon(account, kind="discount", rate=15, cap="30.00", uses=5)
    client.force_login(user)
    card = ph.parse(client.get("/billing/coupons/")).find("div", cls="coupon-card")
    assert "15 % off, up to 30.00 USD a use" in card.text()
    assert "5 of 5 uses left" in card.text()
    assert "150.00" not in card.text()


def test_the_voided_tab_shows_the_reason_who_voided_and_when(client, shop, dist_admin):
    account, _, user = shop
    dist_admin.first_name, dist_admin.last_name = "Dana", "Admin"
    dist_admin.save()
    coupon = f.make_coupon(account, amount="25.00")
    voided = coupon_void(coupon=coupon, acting_user=dist_admin, reason="Duplicate grant")
    client.force_login(user)
    card = ph.parse(client.get("/billing/coupons/?status=voided")).find("div", cls="coupon-card")
    note = card.find("div", cls="void-note").text()
    when = timezone.localtime(voided.voided_at)
    assert note == (f"Voided {when:%Y-%m-%d %H:%M} {when.tzname()} by Dana Admin "
                    f"({account.partner.name}): Duplicate grant")
