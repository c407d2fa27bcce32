"""The billing pages of PRODUCT §8 and §10: the sub-account's Billing Management (Coupons,
Bills), the partner's Coupon Usage with voiding, and the platform operator's usage upload.

State is made through the services (submit → approve → release, usage import, daily bills
with eager posting, month close, expiry, void); see page_helpers.World for what it holds.
"""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tables2.paginators import LazyPaginator

from audit.models import AuditLog
from billing.ledger import ledger_check
from billing.models import DailyBill, DailyBillLine, Deduction, UsageImport, UsageRecord
from billing.month_close import month_close
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.billing.page_helpers import D

pytestmark = pytest.mark.django_db

OFF_MESSAGE = "Contact your BD to enable the Coupon Function"
USAGE = "/coupons/usage/"


def as_user(client, user):
    client.force_login(user)
    return client


def coupons_url(status=None):
    url = reverse("billing:coupons")
    return f"{url}?status={status}" if status else url


def daily_url(day):
    return reverse("billing:daily_bill", args=[f"{day:%Y-%m-%d}"])


def monthly_url(day):
    return reverse("billing:monthly_bill", args=[f"{day:%Y-%m}"])


def void_url(coupon):
    return reverse("coupon_void", args=[coupon.pk])


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx)


def coupon_cards(response) -> dict[str, ph.Node]:
    """The coupon cards of Billing → Coupons, by code."""
    root = ph.parse(response)
    return {card.find("code").text(): card for card in root.find_all("div", cls="coupon-card")}


def usage_table(response) -> ph.Node:
    return ph.parse(response).find("table", cls="table-hover")


def usage_codes(response) -> list[str]:
    """The codes in the Coupon Usage table, in page order."""
    codes = []
    for row in usage_table(response).find("tbody").find_all("tr"):
        code = row.find_all("code")
        if code:
            codes.append(code[0].text())
    return codes


def codes(coupons) -> set[str]:
    return {c.code for c in coupons}


def snapshot(coupon: Coupon) -> tuple:
    coupon.refresh_from_db()
    return (coupon.status, coupon.balance, coupon.voided_amount, coupon.void_reason,
            AuditLog.objects.count(), Deduction.objects.count())


# =======================================================================================
# Sub-account console: Billing Management → Coupons


class TestSubAccountPages:
    """Billing Management → Coupons and Bills of A, B and X of the shared World."""

    def test_subaccount_coupons_tabs_list_only_own_coupons_of_each_status(self, client, world):
        w = world
        expected = {
            Coupon.Status.AVAILABLE: {w.coupons["a_promo"].code},
            Coupon.Status.USED_UP: {w.coupons["a_welcome"].code},
            Coupon.Status.EXPIRED: {w.coupons["a_short"].code},
            Coupon.Status.VOIDED: {w.coupons["a_voided"].code},
        }
        foreign = {w.coupons["b_welcome"].code, w.x_coupon.code}
        as_user(client, w.a_user)
        for status, wanted in expected.items():
            response = client.get(coupons_url(status))
            assert response.status_code == 200
            assert set(coupon_cards(response)) == wanted, status
            assert wanted == codes(Coupon.objects.filter(sub_account=w.a, status=status))
            page = response.content.decode()
            assert not any(code in page for code in foreign)
            tabs = {a.text().rsplit(" ", 1)[0]: int(a.text().rsplit(" ", 1)[1])
                    for a in ph.parse(response).find("ul", cls="nav-tabs").find_all("a")}
            assert tabs == {"Available": 1, "Used up": 1, "Expired": 1, "Voided": 1}

        as_user(client, w.b_user)
        assert set(coupon_cards(client.get(coupons_url()))) == {w.coupons["b_welcome"].code}
        for status in (Coupon.Status.USED_UP, Coupon.Status.EXPIRED, Coupon.Status.VOIDED):
            assert coupon_cards(client.get(coupons_url(status))) == {}

    def test_subaccount_coupons_unknown_status_falls_back_to_available(self, client, world):
        response = as_user(client, world.a_user).get(coupons_url("<script>"))
        assert response.status_code == 200
        assert set(coupon_cards(response)) == {world.coupons["a_promo"].code}

    def test_subaccount_coupon_shows_each_deduction_with_date_product_bill_link_and_amount(
        self, client, world,
    ):
        w = world
        as_user(client, w.a_user)
        expected = {
            "a_welcome": [(w.d1, "ecs", D("25.00")), (w.d2, "ecs", D("15.00"))],
            "a_promo": [(w.d2, "ecs", D("5.00")), (w.d2, "oss", D("7.50"))],
        }
        for key, status in (("a_welcome", "used_up"), ("a_promo", "available")):
            coupon = w.coupons[key]
            assert ph.deductions_of(coupon) == expected[key]
            card = coupon_cards(client.get(coupons_url(status)))[coupon.code]
            rows = ph.table_rows(card, table=card.find("table"))
            assert len(rows) == len(expected[key])
            for (day, product, amount), (shown_day, shown_product, bill, shown_amount) in zip(
                    expected[key], rows, strict=True):
                assert shown_day == f"{day:%Y-%m-%d}"
                assert product in shown_product.split()
                assert bill == f"Daily bill {day:%Y-%m-%d}"
                assert (ph.money(shown_amount), shown_amount.split()[-1]) == (amount, "USD")
            links = [a.attrs["href"] for a in card.find("table").find_all("a")]
            assert links == [daily_url(day) for day, _, _ in expected[key]]
            assert all(client.get(link).status_code == 200 for link in links)
            figures = re.search(r"([\d.,]+) USD of ([\d.,]+) USD · used ([\d.,]+) USD",
                                card.find("div", cls="text-end").text())
            assert figures.groups() == (f"{coupon.balance}", f"{coupon.amount}",
                                        f"{ph.used(coupon)}")  # to the cent on both DBs
        assert ph.used(w.coupons["a_promo"]) == D("12.50")

    def test_subaccount_voided_coupon_shows_voided_amount(self, client, world):
        coupon = world.coupons["a_voided"]
        card = coupon_cards(as_user(client, world.a_user).get(coupons_url("voided")))[coupon.code]
        assert "voided 20.00" in card.text()
        assert (coupon.balance, coupon.voided_amount) == (D("0.00"), D("20.00"))

    # =======================================================================================
    # Sub-account console: Bills

    def test_bill_list_shows_own_daily_and_monthly_bills_with_the_coupon_deduction_column(
        self, client, world,
    ):
        w = world
        root = ph.parse(as_user(client, w.a_user).get(reverse("billing:bills")))
        for table in ("daily-bills", "monthly-bills"):
            head = [th.text() for th in root.find("table", id=table).find("thead").find_all("th")]
            assert head[1:] == ["Original", "Coupon deduction", "Payable"]
        daily = [ph.amounts(row) for row in ph.table_rows(root, id="daily-bills")]
        assert daily == [
            [f"{w.d2:%Y-%m-%d}", D("27.50"), D("27.50"), D("0.00")],
            [f"{w.d1:%Y-%m-%d}", D("25.00"), D("25.00"), D("0.00")],
            [f"{w.old:%Y-%m-%d}", D("3.00"), D("0.00"), D("3.00")],
        ]
        assert daily == [
            [f"{b.date:%Y-%m-%d}", b.original_amount, b.deduction_amount, b.payable_amount]
            for b in DailyBill.objects.filter(sub_account=w.a).order_by("-date")
        ]
        assert [ph.amounts(row) for row in ph.table_rows(root, id="monthly-bills")] == [
            [f"{w.d2:%Y-%m}", D("52.50"), D("52.50"), D("0.00")],
            [f"{w.old:%Y-%m}", D("3.00"), D("0.00"), D("3.00")],
        ]
        links = [a.attrs["href"] for a in root.find("table", id="daily-bills").find_all("a")]
        assert links == [daily_url(w.d2), daily_url(w.d1), daily_url(w.old)]
        links = [a.attrs["href"] for a in root.find("table", id="monthly-bills").find_all("a")]
        assert links == [monthly_url(w.d2), monthly_url(w.old)]

        root = ph.parse(as_user(client, w.b_user).get(reverse("billing:bills")))
        assert [ph.amounts(row) for row in ph.table_rows(root, id="daily-bills")] == [
            [f"{w.d1:%Y-%m-%d}", D("12.34"), D("12.34"), D("0.00")]]
        assert [ph.amounts(row) for row in ph.table_rows(root, id="monthly-bills")] == [
            [f"{w.d1:%Y-%m}", D("12.34"), D("12.34"), D("0.00")]]

    def test_daily_bill_lines_show_deduction_column_and_each_coupon_that_paid(
        self, client, world,
    ):
        w = world
        welcome, promo = w.coupons["a_welcome"].code, w.coupons["a_promo"].code
        root = ph.parse(as_user(client, w.a_user).get(daily_url(w.d2)))
        rows = ph.table_rows(root, id="bill-lines")
        assert [(row[0].split()[0], *ph.amounts(row[:4])[1:], ph.paid_by(row[4]))
                for row in rows] == [
            ("ecs", D("20.00"), D("20.00"), D("0.00"), [(welcome, D("15.00")),
                                                        (promo, D("5.00"))]),
            ("oss", D("7.50"), D("7.50"), D("0.00"), [(promo, D("7.50"))]),
        ]
        assert ph.amounts(ph.table_rows(root, id="bill-lines", section="tfoot")[0]) == [
            "Total", D("27.50"), D("27.50"), D("0.00")]
        for line in DailyBillLine.objects.filter(bill__sub_account=w.a, bill__date=w.d2):
            paid = sum(Deduction.objects.filter(line=line).values_list("amount", flat=True),
                       Decimal("0"))
            assert paid == line.deduction_amount

        [row] = ph.table_rows(ph.parse(client.get(daily_url(w.old))), id="bill-lines")
        assert (row[0].split()[0], *ph.amounts(row[:4])[1:], ph.paid_by(row[4])) == (
            "ecs", D("3.00"), D("0.00"), D("3.00"), [])

    def test_monthly_bill_sums_daily_bills_and_lists_the_deduction_of_each_coupon(
        self, client, world,
    ):
        w = world
        welcome, promo = w.coupons["a_welcome"], w.coupons["a_promo"]
        response = as_user(client, w.a_user).get(monthly_url(w.d2))
        assert response.status_code == 200
        root = ph.parse(response)
        assert [[row[0].split()[0], *ph.amounts(row)[1:]]
                for row in ph.table_rows(root, id="bill-lines")] == [
            ["ecs", D("45.00"), D("45.00"), D("0.00")], ["oss", D("7.50"), D("7.50"), D("0.00")]]
        assert ph.amounts(ph.table_rows(root, id="bill-lines", section="tfoot")[0]) == [
            "Total", D("52.50"), D("52.50"), D("0.00")]
        rows = [(row[0].find("code").text(), ph.money(row[1].text()), int(row[2].text()))
                for row in ph.table_cells(root, id="coupon-deductions")]
        assert sorted(rows) == sorted([(welcome.code, D("40.00"), 2), (promo.code, D("12.50"), 2)])
        for code, amount, count in rows:
            in_month = Deduction.objects.filter(coupon__code=code, bill_date__month=w.d2.month,
                                                bill_date__year=w.d2.year)
            assert amount == sum(in_month.values_list("amount", flat=True), Decimal("0"))
            assert count == in_month.count()

        root = ph.parse(client.get(monthly_url(w.old)))
        assert ph.table_rows(root, id="coupon-deductions") == [["No coupon paid this month."]]

    def test_another_subaccounts_bill_day_or_month_is_404_and_own_bill_shows_own_data(
        self, client, world,
    ):
        w = world
        as_user(client, w.b_user)
        assert client.get(daily_url(w.d2)).status_code == 404  # only A billed that day
        assert client.get(monthly_url(w.old)).status_code == 404  # only A billed that month
        own = client.get(daily_url(w.d1))
        [row] = ph.table_rows(ph.parse(own), id="bill-lines")
        assert ph.paid_by(row[4]) == [(w.coupons["b_welcome"].code, D("12.34"))]
        page = own.content.decode()
        assert w.coupons["a_welcome"].code not in page and "25.00" not in page

        as_user(client, w.x_user)
        page = client.get(daily_url(w.d1)).content.decode()
        assert w.x_coupon.code in page and "9.99" in page
        assert w.coupons["a_welcome"].code not in page and "25.00" not in page
        assert client.get(daily_url(w.d2)).status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "admin", "operator", "viewer", "bd",
                                 "superuser"])
def test_partner_users_bds_and_anonymous_can_not_open_billing_pages(
    client, who, distributor, dist_admin, dist_operator, dist_viewer, bd,
):
    users = {"admin": dist_admin, "operator": dist_operator, "viewer": dist_viewer, "bd": bd,
             "superuser": get_user_model().objects.create_superuser("root", password="pw")}
    if who != "anonymous":
        client.force_login(users[who])
    for url in (coupons_url(), reverse("billing:bills"), "/billing/bills/daily/2025-03-01/",
                "/billing/bills/monthly/2025-03/"):
        response = client.get(url)
        if who == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
        else:
            assert response.status_code == 403, (who, url)


def test_bad_dates_and_months_in_bill_urls_are_404_not_500(client, distributor):
    [account] = f.make_accounts(distributor, 1, prefix="BAD-")
    as_user(client, f.make_subaccount_user(account))
    bad = ["/billing/bills/daily/2025-02-30/", "/billing/bills/daily/2025-13-01/",
           "/billing/bills/daily/2025-00-10/", "/billing/bills/daily/0000-01-01/",
           "/billing/bills/daily/9999-99-99/", "/billing/bills/daily/2025-1-1/",
           "/billing/bills/daily/yesterday/", "/billing/bills/monthly/2025-13/",
           "/billing/bills/monthly/2025-00/", "/billing/bills/monthly/0000-01/",
           "/billing/bills/monthly/2025-1/", "/billing/bills/monthly/2025-03-01/",
           "/billing/bills/monthly/9999-12/", "/billing/bills/monthly/0001-01/",
           # well-formed, but no bill: still 404
           "/billing/bills/daily/2025-03-01/", "/billing/bills/monthly/2025-03/"]
    for url in bad:
        assert client.get(url).status_code == 404, url
    assert client.get(f"{reverse('billing:bills')}?page=abc").status_code == 200
    assert client.get(f"{coupons_url()}?page=999").status_code == 200


def test_subaccount_pages_query_count_does_not_grow_with_coupons_deductions_and_bills(
    client, distributor, dist_admin, bd,
):
    f.make_product("ecs")
    f.make_product("oss")
    today = timezone.localdate()
    last_month_end = ph.previous_month_end(today)
    older_end = ph.previous_month_end(last_month_end)
    account = ph.account(distributor, "CQ-0001", "Quinn")
    as_user(client, f.make_subaccount_user(account))
    tpl = ph.template(distributor, dist_admin, "Q cash", face="10.00",
                      valid=(older_end - timedelta(days=27), today + timedelta(days=30)))
    urls = [coupons_url("available"), coupons_url("used_up"), reverse("billing:bills")]

    for _ in range(2):
        ph.issue(tpl, dist_admin, bd, [account])
    ph.bill([(account, older_end - timedelta(days=1), "ecs", "6.00"),
             (account, older_end, "oss", "7.00")])
    month_close(month=older_end.replace(day=1))
    small = [count_queries(client, url) for url in urls]
    small_counts = (Coupon.objects.filter(sub_account=account).count(),
                    Deduction.objects.filter(sub_account=account).count(),
                    DailyBill.objects.filter(sub_account=account).count())

    for _ in range(6):
        ph.issue(tpl, dist_admin, bd, [account])
    ph.bill([(account, last_month_end - timedelta(days=i), product, amount)
             for i in range(8) for product, amount in (("ecs", "3.00"), ("oss", "2.00"))])
    month_close(month=last_month_end.replace(day=1))
    large_counts = (Coupon.objects.filter(sub_account=account).count(),
                    Deduction.objects.filter(sub_account=account).count(),
                    DailyBill.objects.filter(sub_account=account).count())
    assert large_counts[0] >= 4 * small_counts[0] and large_counts[1] >= 4 * small_counts[1]
    assert large_counts[2] == 5 * small_counts[2]
    available = Coupon.objects.filter(sub_account=account, status="available").count()
    used_up = Coupon.objects.filter(sub_account=account, status="used_up").count()
    assert available >= 2 and used_up >= 4  # both tabs grew

    assert [count_queries(client, url) for url in urls] == small


# =======================================================================================
# Partner console: Coupon Usage


SUB_ACCOUNT_SEARCHES = [
    ("CB-", {"b_welcome"}),
    ("cb-00", {"b_welcome"}),
    ("  CB-0002 ", {"b_welcome"}),
    ("beta", {"b_welcome"}),
    ("lpha c", {"a_welcome", "a_promo", "a_short", "a_voided"}),
    ("CA-0001", {"a_welcome", "a_promo", "a_short", "a_voided"}),
    ("B-0002", set()),  # inside an ID but not its start
    ("XR-", set()),  # another partner's account
    ("Xeno", set()),
]


ORDER_KEYS = {
    "code": lambda c: c.code,
    "sub_account": lambda c: c.sub_account.account_id,
    "template": lambda c: c.template.name,
    "cost_bearer": lambda c: c.cost_bearer,
    "amount": lambda c: c.amount,
    "used": ph.used,
    "balance": lambda c: c.balance,
    "valid_until": lambda c: c.valid_until,
    "status": lambda c: c.status,
    "released_at": lambda c: c.released_at,
}


def usage_table_columns(client):
    return list(client.get(USAGE).context["table"].columns)


@pytest.fixture
def thirty(distributor, dist_admin, bd):
    accounts = f.make_accounts(distributor, 30, prefix="P-")
    tpl = ph.template(distributor, dist_admin, "Bulk cash", face="5.00")
    return ph.issue(tpl, dist_admin, bd, accounts)


def test_coupon_usage_pages_lazily_page_two_and_out_of_range_pages_are_handled(
    client, dist_admin, thirty,
):
    as_user(client, dist_admin)
    with CaptureQueriesContext(connection) as ctx:
        first = client.get(USAGE)
    assert isinstance(first.context["table"].paginator, LazyPaginator)
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    second = client.get(USAGE, {"page": 2})
    page1, page2 = usage_codes(first), usage_codes(second)
    assert (len(page1), len(page2)) == (25, 5)
    assert not set(page1) & set(page2)
    assert set(page1) | set(page2) == codes(thirty)
    for page in ("99", "0", "-1", "abc"):
        response = client.get(USAGE, {"page": page})
        assert response.status_code == 200, page
    assert usage_codes(client.get(USAGE, {"page": 2, "sort": "code"})) == sorted(
        codes(thirty))[25:]


class TestCouponUsage:
    """Coupon Usage of the shared World's distributor (and of Rival)."""

    def test_lists_only_the_partners_own_coupons(self, client, world):
        w = world
        response = as_user(client, w.admin).get(USAGE)
        assert response.status_code == 200
        assert sorted(usage_codes(response)) == sorted(codes(w.partner_coupons()))
        assert len(usage_codes(response)) == 5
        page = response.content.decode()
        assert w.x_coupon.code not in page and "Xeno Corp" not in page
        assert "Rival welcome" not in page

        rows = {row[0]: row for row in ph.table_rows(ph.parse(response),
                                                      table=usage_table(response))}
        promo = w.coupons["a_promo"]
        assert rows[promo.code] == [
            promo.code, "CA-0001 Alpha Co", "Platform promo", "Platform-borne", "100.00 USD",
            "12.50 USD", "87.50 USD", f"{promo.valid_from:%Y-%m-%d} → {promo.valid_until:%Y-%m-%d}",
            "Available", f"{w.d1 - timedelta(days=1):%Y-%m-%d}", "Void"]

        response = as_user(client, w.rival_admin).get(USAGE)
        assert usage_codes(response) == [w.x_coupon.code]
        assert not any(c.code in response.content.decode() for c in w.partner_coupons())

    def test_template_filter_selects_only_that_templates_coupons(self, client, world):
        w = world
        as_user(client, w.admin)
        for key, tpl in w.templates.items():
            response = client.get(USAGE, {"template": tpl.pk})
            assert set(usage_codes(response)) == codes(Coupon.objects.filter(template=tpl)), key
        assert set(usage_codes(client.get(USAGE, {"template": w.templates["welcome"].pk}))) == {
            w.coupons["a_welcome"].code, w.coupons["b_welcome"].code}
        options = [o.text() for o in ph.parse(client.get(USAGE)).find("select", id="id_template")
                   .find_all("option")]
        assert "Rival welcome" not in options and "Welcome cash" in options

    def test_refuses_another_partners_template_id_without_leaking(self, client, world):
        w = world
        response = as_user(client, w.admin).get(USAGE, {"template": w.rival_template.pk})
        assert response.status_code == 200
        assert usage_codes(response) == []
        page = response.content.decode()
        assert "Select a valid choice" in page
        assert "Rival welcome" not in page and w.x_coupon.code not in page
        assert ph.table_rows(ph.parse(response), id="usage-totals") == [["No coupons match."]]
        assert response.context["chart"] == []

    def test_sub_account_filter_matches_id_prefix_or_name(self, client, world):
        as_user(client, world.admin)
        for search, expected in SUB_ACCOUNT_SEARCHES:
            response = client.get(USAGE, {"sub_account": search})
            assert set(usage_codes(response)) == {world.coupons[k].code for k in expected}, search

    def test_status_filter_selects_each_status(self, client, world):
        w = world
        as_user(client, w.admin)
        expected = {
            "available": {"a_promo", "b_welcome"}, "used_up": {"a_welcome"},
            "expired": {"a_short"}, "voided": {"a_voided"},
        }
        for status, keys in expected.items():
            assert set(usage_codes(client.get(USAGE, {"status": status}))) == {
                w.coupons[k].code for k in keys}, status
        response = client.get(USAGE, {"status": "bogus"})
        assert response.status_code == 200 and usage_codes(response) == []
        assert "Select a valid choice" in response.content.decode()

    def test_cost_bearer_filter(self, client, world):
        w = world
        as_user(client, w.admin)
        assert usage_codes(client.get(USAGE, {"cost_bearer": "platform"})) == [
            w.coupons["a_promo"].code]
        assert set(usage_codes(client.get(USAGE, {"cost_bearer": "partner"}))) == {
            w.coupons[k].code for k in ("a_welcome", "b_welcome", "a_short", "a_voided")}

    def test_released_and_valid_until_date_ranges(self, client, world):
        w = world
        as_user(client, w.admin)
        day = lambda d: f"{d:%Y-%m-%d}"  # noqa: E731
        cases = [
            ({"released_to": day(w.d1 - timedelta(days=3))}, {"a_welcome", "b_welcome"}),
            ({"released_from": day(w.d1 - timedelta(days=1)),
              "released_to": day(w.d1 - timedelta(days=1))}, {"a_promo"}),
            ({"released_from": day(w.today)}, {"a_short", "a_voided"}),
            ({"released_from": day(w.d1 - timedelta(days=2)), "released_to": day(w.d1)},
             {"a_promo"}),
            ({"valid_until_from": day(w.today + timedelta(days=61))}, {"a_promo"}),
            ({"valid_until_to": day(w.today)}, {"a_short"}),
            ({"valid_until_from": day(w.today + timedelta(days=29)),
              "valid_until_to": day(w.today + timedelta(days=60))},
             {"a_welcome", "b_welcome", "a_voided"}),
            ({"released_from": day(w.today), "released_to": day(w.d1)}, set()),  # reversed
        ]
        for params, keys in cases:
            assert set(usage_codes(client.get(USAGE, params))) == {
                w.coupons[k].code for k in keys}, params

    def test_invalid_dates_give_a_message_not_a_500(self, client, world):
        as_user(client, world.admin)
        for params in ({"released_from": "2025-13-45"}, {"released_to": "not a date"},
                       {"valid_until_from": "2025-02-30"}, {"valid_until_to": "99999-01-01"}):
            response = client.get(USAGE, params)
            assert response.status_code == 200, params
            assert "as YYYY-MM-DD" in response.content.decode(), params
            assert usage_codes(response) == [], params

    def test_sorting_by_each_column_is_stable_and_ends_on_id(self, client, world):
        w = world
        as_user(client, w.admin)
        coupons = list(Coupon.objects.filter(partner=w.partner).select_related(
            "sub_account", "template"))
        orderable = [c.name for c in usage_table_columns(client) if c.orderable]
        assert sorted(orderable) == sorted(ORDER_KEYS)
        for column, key in ORDER_KEYS.items():
            ascending = [c.code for c in sorted(coupons, key=lambda c: (key(c), c.pk))]
            for sort, expected in ((column, ascending), (f"-{column}", ascending[::-1])):
                response = client.get(USAGE, {"sort": sort})
                assert usage_codes(response) == expected, sort
                ordering = response.context["table"].data.data.query.order_by
                assert ordering[-1] == ("-id" if sort.startswith("-") else "id"), sort
        # Ties (the two Welcome coupons share amount and release time) keep the id order.
        welcome = [w.coupons["a_welcome"], w.coupons["b_welcome"]]
        by_id = [c.code for c in sorted(welcome, key=lambda c: c.pk)]
        shown = [code for code in usage_codes(client.get(USAGE, {"sort": "amount"}))
                 if code in by_id]
        assert shown == by_id

    def test_totals_equal_sums_of_the_filtered_coupons_per_currency(
        self, client, world,
    ):
        w = world
        euro = ph.account(w.partner, "CE-0003", "Euro GmbH", currency="EUR")
        euro_tpl = ph.template(w.partner, w.admin, "Euro cash", face="33.33", currency="EUR")
        [euro_coupon] = ph.issue(euro_tpl, w.admin, w.bd, [euro])
        as_user(client, w.admin)

        response = client.get(USAGE)
        assert ph.table_rows(ph.parse(response), id="usage-totals") == [
            ["EUR", "33.33 EUR", "0.00 EUR", "33.33 EUR", "0.00 EUR"],
            ["USD", "210.00 USD", "64.84 USD", "125.16 USD", "20.00 USD"],
        ]
        filters = [{}, {"template": w.templates["welcome"].pk}, {"status": "available"},
                   {"sub_account": "CA-"}, {"cost_bearer": "partner"},
                   {"sub_account": "CE-"}, {"status": "used_up"}]
        for params in filters:
            response = client.get(USAGE, params)
            shown = set(usage_codes(response))
            filtered = [c for c in Coupon.objects.filter(partner=w.partner) if c.code in shown]
            assert shown == {c.code for c in filtered}  # every coupon of the set is on page 1
            expected = {}
            for c in filtered:
                row = expected.setdefault(c.currency, [Decimal("0")] * 4)
                for i, value in enumerate((c.amount, ph.used(c), c.balance, c.voided_amount)):
                    row[i] += value
            totals = {t["currency"]: [t["amount"], t["used"], t["remaining"], t["voided"]]
                      for t in response.context["totals"]}
            assert totals == expected, params
            for values in totals.values():
                assert all(isinstance(v, Decimal) and v == v.quantize(D("0.01")) for v in values)
        assert euro_coupon.code in usage_codes(client.get(USAGE, {"sub_account": "CE-"}))

    def test_chart_numbers_equal_the_deductions_per_day(self, client, world):
        w = world
        as_user(client, w.admin)

        def per_day(**filters):
            totals: dict = {}
            for day, amount in Deduction.objects.filter(**filters).values_list(
                    "bill_date", "amount"):
                totals[day] = totals.get(day, Decimal("0")) + amount
            return totals

        response = client.get(USAGE)
        chart = {d["bill_date"]: d["total"] for d in response.context["chart"]}
        assert chart == per_day(coupon__partner=w.partner)
        assert chart == {w.d1: D("37.34"), w.d2: D("27.50")}  # not Rival's 9.99
        assert [s.total for s in response.context["series"].series] == [D("64.84")]
        # The table under the chart: every day of the window, zeros included.
        numbers = ph.table_rows(ph.parse(response), id="usage-chart-table-USD")
        assert [row for row in numbers if row[1] != "0.00 USD"] == [
            [f"{w.d1:%Y-%m-%d}", "37.34 USD"], [f"{w.d2:%Y-%m-%d}", "27.50 USD"]]
        assert len(numbers) == len(response.context["series"].days)

        response = client.get(USAGE, {"sub_account": "CB-"})
        assert {d["bill_date"]: d["total"] for d in response.context["chart"]} == per_day(
            coupon__sub_account=w.b) == {w.d1: D("12.34")}

        response = as_user(client, w.rival_admin).get(USAGE)
        assert {d["bill_date"]: d["total"] for d in response.context["chart"]} == {
            w.d1: D("9.99")}

    def test_query_count_is_fixed_as_rows_grow(self, client, world):
        w = world
        as_user(client, w.admin)
        urls = [USAGE, f"{USAGE}?status=available&sort=-amount",
                f"{USAGE}?sub_account=C&released_from={w.d1 - timedelta(days=10):%Y-%m-%d}"]
        small = [count_queries(client, url) for url in urls]

        more = f.make_accounts(w.partner, 40, prefix="CG-")
        ph.issue(w.templates["welcome"], w.admin, w.bd, more)
        ph.issue(w.templates["promo"], w.admin, w.bd, more[:10])
        # Bills today (inside the windows; last month is closed) for the new accounts.
        ph.bill([(a, w.today, "ecs", "1.00") for a in more])
        assert Coupon.objects.filter(partner=w.partner).count() == 55
        assert Deduction.objects.filter(partner=w.partner).count() > 40

        assert [count_queries(client, url) for url in urls] == small

    def test_viewer_and_operator_see_it_without_void_buttons(self, client, world):
        w = world
        available = {w.coupons["a_promo"].pk, w.coupons["b_welcome"].pk}
        response = as_user(client, w.admin).get(USAGE)
        links = {a.attrs["href"] for a in usage_table(response).find_all("a")
                 if "/void/" in a.attrs.get("href", "")}
        assert links == {reverse("coupon_void", args=[pk]) for pk in available}
        for user in (w.viewer, w.operator):
            response = as_user(client, user).get(USAGE)
            assert response.status_code == 200
            assert sorted(usage_codes(response)) == sorted(codes(w.partner_coupons()))
            assert "/void/" not in response.content.decode()

    def test_refused_to_subaccount_users_bds_and_anonymous(self, client, world):
        w = world
        for user in (w.a_user, w.bd):
            as_user(client, user)
            assert client.get(USAGE).status_code == 403
            assert client.get(USAGE, {"_export": "csv"}).status_code == 403
        client.logout()
        response = client.get(USAGE)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    def test_with_function_off_is_403_with_contact_your_bd(self, client, world):
        w = world
        w.partner.coupon_enabled = False
        w.partner.save(update_fields=["coupon_enabled"])
        for user in (w.admin, w.viewer):
            as_user(client, user)
            for response in (client.get(USAGE), client.get(USAGE, {"_export": "xlsx"}),
                             client.get(void_url(w.coupons["a_promo"])),
                             client.post(void_url(w.coupons["a_promo"]), {"reason": "x"})):
                assert response.status_code == 403
                assert OFF_MESSAGE in response.content.decode()
        assert w.coupons["a_promo"].code not in client.get(USAGE).content.decode()
        assert snapshot(w.coupons["a_promo"])[0] == Coupon.Status.AVAILABLE


# =======================================================================================
# Voiding


class TestVoid:
    """Voiding from Coupon Usage (PRODUCT §6)."""

    def test_partner_admin_voids_a_coupon_moving_its_balance_to_voided_with_an_audit_row(
        self, client, world,
    ):
        w = world
        coupon = w.coupons["a_promo"]
        deductions = ph.deductions_of(coupon)
        as_user(client, w.admin)
        page = client.get(void_url(coupon))
        assert page.status_code == 200 and "87.50 USD" in page.content.decode()

        response = client.post(void_url(coupon), {"reason": "  Customer left  "}, follow=True)
        # Back on the coupon's detail, which says who voided it, when and why.
        assert response.redirect_chain[-1][0] == reverse("coupon_detail", args=[coupon.pk])
        assert f"Coupon {coupon.code} is voided: 87.50 USD withdrawn." in ph.messages_of(response)
        details = ph.parse(response).find(id="void-details").text()
        stored = Coupon.objects.get(pk=coupon.pk)
        when = timezone.localtime(stored.voided_at)
        assert details == (f"Voided on {when:%Y-%m-%d %H:%M} {when.tzname()} by "
                           f"{w.admin.username}; 87.50 USD withdrawn. Reason: Customer left")
        assert stored.voided_by == w.admin
        coupon.refresh_from_db()
        assert (coupon.status, coupon.balance, coupon.voided_amount, coupon.void_reason) == (
            Coupon.Status.VOIDED, D("0.00"), D("87.50"), "Customer left")
        assert ph.used(coupon) == D("12.50")
        assert ph.deductions_of(coupon) == deductions  # deductions already made stay
        [audit] = AuditLog.objects.filter(action="coupon.void", object_id=str(coupon.pk))
        assert (audit.actor, audit.partner, audit.reason) == (w.admin, w.partner, "Customer left")
        assert audit.before["status"] == "available" and D(audit.before["balance"]) == D("87.50")
        assert audit.after["status"] == "voided" and D(audit.after["voided_amount"]) == D("87.50")
        assert ledger_check() == []

    def test_void_is_403_for_operator_viewer_and_subaccount_user_and_writes_nothing(
        self, client, world,
    ):
        w = world
        coupon = w.coupons["a_promo"]
        before = snapshot(coupon)
        for user in (w.operator, w.viewer, w.a_user, w.bd):
            as_user(client, user)
            assert client.get(void_url(coupon)).status_code == 403
            assert client.post(void_url(coupon), {"reason": "no"}).status_code == 403
        assert snapshot(coupon) == before

    def test_void_of_another_partners_coupon_is_404_and_writes_nothing(self, client, world):
        w = world
        before = (snapshot(w.x_coupon), snapshot(w.coupons["a_promo"]))
        as_user(client, w.admin)
        assert client.get(void_url(w.x_coupon)).status_code == 404
        assert client.post(void_url(w.x_coupon), {"reason": "mine now"}).status_code == 404
        as_user(client, w.rival_admin)
        assert client.get(void_url(w.coupons["a_promo"])).status_code == 404
        assert client.post(void_url(w.coupons["a_promo"]), {"reason": "x"}).status_code == 404
        assert client.post(reverse("coupon_void", args=[10**9]), {"reason": "x"}).status_code == 404
        assert (snapshot(w.x_coupon), snapshot(w.coupons["a_promo"])) == before

    def test_void_without_a_reason_shows_a_message_and_writes_nothing(self, client, world):
        coupon = world.coupons["a_promo"]
        before = snapshot(coupon)
        as_user(client, world.admin)
        for data in ({"reason": ""}, {"reason": "   "}, {}):
            response = client.post(void_url(coupon), data)
            assert response.status_code == 200, data
            assert "This field is required." in response.content.decode(), data
        assert snapshot(coupon) == before

    def test_void_of_a_used_up_expired_or_voided_coupon_is_refused_with_a_clear_message(
        self, client, world,
    ):
        as_user(client, world.admin)
        for key, status in (("a_welcome", "used up"), ("a_short", "expired"),
                            ("a_voided", "voided")):
            coupon = world.coupons[key]
            before = snapshot(coupon)
            response = client.post(void_url(coupon), {"reason": "again"})
            assert response.status_code == 200, key
            assert (f"Coupon {coupon.code} is {status}; only an available coupon can be voided."
                    in response.content.decode()), key
            assert snapshot(coupon) == before, key
        assert ledger_check() == []


# =======================================================================================
# Usage upload (Django admin, platform operators)

UPLOAD = "/admin/billing/usageimport/upload/"
HEADER = "account_id,date,product_code,amount\n"


@pytest.fixture
def upload_account(distributor):
    f.make_product("ecs")
    f.make_product("oss")
    return ph.account(distributor, "U-0001", "Uploader")


@pytest.fixture
def root_user(db):
    return get_user_model().objects.create_superuser("root", password="pw")


def csv_file(text: str | bytes, name="usage.csv"):
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


GOOD = HEADER + "U-0001,2025-03-01,ecs,10.00\nU-0001,2025-03-01,oss,2.50\nU-0001,2025-03-02,ecs,1\n"


def test_usage_upload_page_is_for_superusers_only(
    client, upload_account, dist_admin, bd, distributor,
):
    sub_user = f.make_subaccount_user(upload_account)
    for user in (None, dist_admin, sub_user, bd):
        client.logout()
        if user is not None:
            client.force_login(user)
        get = client.get(UPLOAD)
        post = client.post(UPLOAD, {"file": csv_file(GOOD)})
        for response in (get, post):
            if user is bd:
                assert response.status_code == 403
            else:  # not staff: the admin sends them to its login
                assert response.status_code == 302
                assert response["Location"].startswith(reverse("admin:login"))
    assert UsageRecord.objects.count() == 0 and UsageImport.objects.count() == 0


def test_superuser_uploads_a_good_csv_and_sees_the_imported_count(
    client, upload_account, root_user,
):
    as_user(client, root_user)
    assert client.get(UPLOAD).status_code == 200
    response = client.post(UPLOAD, {"file": csv_file(GOOD)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:billing_usageimport_changelist")
    [message] = ph.messages_of(response)
    assert message.startswith("Imported 3 usage records from usage.csv.")
    [batch] = UsageImport.objects.all()
    assert (batch.record_count, batch.source, batch.imported_by) == (
        3, UsageImport.Source.UPLOAD, root_user)
    assert sorted(UsageRecord.objects.values_list("product__code", "amount")) == [
        ("ecs", D("1.00")), ("ecs", D("10.00")), ("oss", D("2.50"))]


def test_upload_with_bad_rows_is_refused_whole_naming_every_bad_line(
    client, upload_account, root_user,
):
    text = HEADER + "\n".join([
        "U-0001,2025-03-01,ecs,10.00",  # 2: good
        "NOPE-1,2025-03-01,ecs,1.00",  # 3
        "U-0001,2025-02-30,ecs,1.00",  # 4
        "U-0001,2025-03-01,ecs,-5.00",  # 5
        "U-0001,2025-03-01,oss,2.00",  # 6: good
        "U-0001,2025-03-01,ecs,1.005",  # 7
        "U-0001,2025-03-01,nope,1.00",  # 8
        "U-0001,2025-03-01,ecs",  # 9
    ]) + "\n"
    response = as_user(client, root_user).post(UPLOAD, {"file": csv_file(text)})
    assert response.status_code == 200
    rows = ph.table_rows(ph.parse(response), id="upload-errors")
    assert [int(line) for line, _ in rows] == [3, 4, 5, 7, 8, 9]
    why = dict((int(line), text) for line, text in rows)
    assert "unknown account ID 'NOPE-1'" in why[3]
    assert "2025-02-30" in why[4] and "negative" in why[5]
    assert "more than 2 decimal places" in why[7]
    assert "unknown product code 'nope'" in why[8]
    assert "expected 4 columns, found 3" in why[9]
    assert "Nothing was imported: 6 bad rows." in response.content.decode()
    assert UsageRecord.objects.count() == 0 and UsageImport.objects.count() == 0


def test_upload_of_a_non_utf8_file_gives_a_clear_message_and_writes_nothing(
    client, upload_account, root_user,
):
    data = (HEADER + "U-0001,2025-03-01,ecs,1.00\n").encode() + "Café,2025-03-01,ecs,1\n".encode(
        "latin-1")
    response = as_user(client, root_user).post(UPLOAD, {"file": csv_file(data)})
    assert response.status_code == 200
    assert "the file is not UTF-8 text" in response.content.decode()
    assert UsageRecord.objects.count() == 0 and UsageImport.objects.count() == 0


def test_release_day_filters_cut_at_the_platforms_midnight_and_survive_extreme_dates(
    client, distributor, dist_admin,
):
    """A coupon released at 23:59:59 local time belongs to that day, one released at
    00:00:00 to the next, whatever UTC says; the first and last days a date holds do not
    break the range (no bound there)."""
    from datetime import datetime

    from tests.factories import make_coupon

    account = f.make_accounts(distributor, 1, prefix="MIDN-")[0]
    day = date(2025, 7, 14)
    late = make_coupon(account, released_at=timezone.make_aware(
        datetime.combine(day, datetime.max.time()).replace(microsecond=0)))
    early = make_coupon(account, released_at=timezone.make_aware(
        datetime.combine(day + timedelta(days=1), datetime.min.time())))
    as_user(client, dist_admin)
    on = lambda d: {"released_from": f"{d:%Y-%m-%d}", "released_to": f"{d:%Y-%m-%d}"}  # noqa: E731
    assert usage_codes(client.get(USAGE, on(day))) == [late.code]
    assert usage_codes(client.get(USAGE, on(day + timedelta(days=1)))) == [early.code]
    assert usage_codes(client.get(USAGE, {"released_to": f"{day:%Y-%m-%d}"})) == [late.code]
    assert usage_codes(client.get(USAGE, {"released_from": "0001-01-01",
                                          "released_to": "9999-12-31"})) == [early.code,
                                                                             late.code]
