"""A coupon's own page under Coupon Usage: what it is (a discount as its rate, cap per use and
uses), what it paid, and, once voided, who voided it, when and why; the same three in the
admin. The partner's own coupons only."""
import pytest
from django.urls import reverse
from django.utils import timezone

from billing.coupon_status import coupon_void
from tests import factories as f
from tests.billing import page_helpers as ph

pytestmark = pytest.mark.django_db

USAGE = "/coupons/usage/"


def detail_url(coupon) -> str:
    return reverse("coupon_detail", args=[coupon.pk])


@pytest.fixture
def account(distributor):
    f.make_product("ecs")
    return f.make_accounts(distributor, 1, prefix="CD-")[0]


def test_coupon_usage_links_each_code_to_the_coupons_page(client, account, dist_viewer):
    coupon = f.make_coupon(account, amount="20.00")
    client.force_login(dist_viewer)
    root = ph.parse(client.get(USAGE))
    link = next(a for a in root.find_all("a") if a.text() == coupon.code)
    assert link.attrs["href"] == detail_url(coupon)
    page = client.get(link.attrs["href"])
    assert page.status_code == 200
    assert "Void" not in ph.parse(page).find("main").text()  # a viewer reads only


def test_a_voided_coupons_page_says_who_voided_it_when_and_why(client, account, dist_admin):
    dist_admin.first_name, dist_admin.last_name = "Dana", "Admin"
    dist_admin.save()
    today = timezone.localdate()
    coupon = f.make_coupon(account, amount="100.00", valid_from=today.replace(day=1),
                           valid_until=today)
    f.bill_usage([(account, today.replace(day=1), "ecs", "30.00")])
    voided = coupon_void(coupon=coupon, acting_user=dist_admin, reason="Sent to the wrong account")
    client.force_login(dist_admin)
    root = ph.parse(client.get(detail_url(coupon)))
    when = timezone.localtime(voided.voided_at)
    assert root.find(id="void-details").text() == (
        f"Voided on {when:%Y-%m-%d %H:%M} {when.tzname()} by Dana Admin; 70.00 USD withdrawn. "
        "Reason: Sent to the wrong account")
    assert root.find(id="coupon-status").text() == "Voided"
    [row] = ph.table_rows(root, id="coupon-deductions")
    assert row[1].split()[0] == "ecs" and row[2] == "30.00 USD"
    summary = root.find(id="coupon-summary").text()
    assert "Used 30.00 USD" in summary and "Voided 70.00 USD" in summary


def test_a_discount_coupons_page_shows_rate_cap_and_uses(client, account, dist_admin):
    coupon = f.make_coupon(account, kind="discount", rate="12.5", cap="40.00", uses=3)
    client.force_login(dist_admin)
    summary = ph.parse(client.get(detail_url(coupon))).find(id="coupon-summary").text()
    assert "Discount: 12.5 % off, up to 40.00 USD a use" in summary
    assert "Uses left 3 of 3 uses" in summary
    assert "120.00" not in summary  # cap × uses is not shown as if it were cash
    row = next(r for r in ph.table_rows(ph.parse(client.get(USAGE)), id=None,
                                        table=ph.parse(client.get(USAGE)).find(
                                            "table", cls="table-hover"))
               if r[0] == coupon.code)
    assert "12.5 % off, up to 40.00 USD a use" in row and "3 of 3 uses" in row


def test_another_partners_coupon_is_404_and_a_subaccount_user_403(
    client, account, other_admin, distributor,
):
    coupon = f.make_coupon(account)
    client.force_login(other_admin)
    assert client.get(detail_url(coupon)).status_code == 404
    assert client.get(reverse("coupon_detail", args=[10**9])).status_code == 404
    client.force_login(f.make_subaccount_user(account))
    assert client.get(detail_url(coupon)).status_code == 403


def test_the_admin_shows_the_void_reason_who_and_when(client, account, dist_admin):
    coupon = f.make_coupon(account)
    coupon_void(coupon=coupon, acting_user=dist_admin, reason="Customer asked to close")
    root_user = f.make_user("cd-root", is_staff=True, is_superuser=True)
    client.force_login(root_user)
    change = client.get(reverse("admin:coupons_coupon_change", args=[coupon.pk]))
    text = ph.parse(change).find(id="content").text()
    assert "Void reason: Customer asked to close" in " ".join(text.split())
    assert f"Voided by: {dist_admin.username}" in text
    listing = ph.parse(client.get(reverse("admin:coupons_coupon_changelist")))
    [row] = [r for r in ph.table_rows(listing, id="result_list") if coupon.code in r]
    # The list's Voided column: who, then when.
    assert any(cell.startswith(dist_admin.username) and "+08" in cell for cell in row), row


def test_a_voided_discount_is_said_to_have_no_uses_left_not_an_amount_withdrawn(
    client, account, dist_admin,
):
    coupon = f.make_coupon(account, kind="discount", rate="10", cap="20.00", uses=4)
    client.force_login(dist_admin)
    response = client.post(reverse("coupon_void", args=[coupon.pk]), {"reason": "Ended"},
                           follow=True)
    assert f"Coupon {coupon.code} is voided: its unused uses withdrawn." in ph.messages_of(
        response)
    root = ph.parse(response)
    assert "its unused uses withdrawn" in root.find(id="void-details").text()
    summary = root.find(id="coupon-summary").text()
    assert "Uses left 0 of 4 uses" in summary and "80.00" not in summary
    client.force_login(f.make_subaccount_user(account))
    card = ph.parse(client.get("/billing/coupons/?status=voided")).find("div", cls="coupon-card")
    assert "0 of 4 uses left" in card.text() and "80.00" not in card.text()


def test_the_admins_coupon_list_shows_a_discount_as_what_it_is_and_amounts_with_currency(
        client, account, bd):
    discount = f.make_coupon(account, kind="discount", rate="10", cap="20.00", uses=4)
    cash = f.make_coupon(account, amount="1250.00")
    client.force_login(bd)
    listing = ph.parse(client.get(reverse("admin:coupons_coupon_changelist")))
    rows = ph.table_rows(listing, id="result_list")
    [discount_row] = [r for r in rows if discount.code in r]
    [cash_row] = [r for r in rows if cash.code in r]
    discount_text = " ".join(" ".join(discount_row).split())
    assert "10 % off, up to 20.00 USD a use" in discount_text
    assert "4 of 4 uses" in discount_text and "80.00" not in discount_text  # not cap × uses
    assert cash_row.count("1,250.00 USD") == 2  # its value and what remains
