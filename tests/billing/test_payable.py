"""Which bills a coupon can pay (billing/payable.py, docs/WHICH_COUPON_PAYS.md): the rule
itself, the posting following it, and the pages that tell partners and sub-accounts."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.daily_bills import daily_bills_make
from billing.models import ClosedMonth, DailyBill
from billing.month_close import month_close
from billing.payable import bill_payable, payable_bills
from billing.posting import account_post_outstanding
from tests import factories as f
from tests.factories import import_usage, make_coupon

pytestmark = pytest.mark.django_db

D = Decimal
MAY, JUNE = date(2026, 5, 1), date(2026, 6, 1)  # the pinned today is 2026-06-17


def close(*months: date) -> None:
    for month in months:
        ClosedMonth.objects.create(month=month)


def test_a_bill_is_payable_inside_the_validity_and_outside_closed_months():
    closed = {MAY}
    window = dict(valid_from=date(2026, 4, 20), valid_until=date(2026, 6, 30))
    assert bill_payable(bill_date=date(2026, 4, 20), closed=closed, **window)
    assert bill_payable(bill_date=date(2026, 6, 30), closed=closed, **window)
    assert not bill_payable(bill_date=date(2026, 4, 19), closed=closed, **window)
    assert not bill_payable(bill_date=date(2026, 7, 1), closed=closed, **window)
    assert not bill_payable(bill_date=date(2026, 5, 31), closed=closed, **window)
    assert not bill_payable(bill_date=date(2026, 5, 1), closed=closed, **window)


def test_payable_bills_is_the_validity_less_the_closed_months():
    close(date(2026, 3, 1), MAY)
    payable = payable_bills(valid_from=date(2026, 3, 15), valid_until=date(2026, 7, 10))
    assert payable.closed == (date(2026, 3, 1), MAY)
    assert payable.ranges == [(date(2026, 4, 1), date(2026, 4, 30)),
                              (JUNE, date(2026, 7, 10))]
    assert payable.ended_open == (date(2026, 4, 1),)
    assert payable.starts_in_past and not payable.pays_nothing
    assert payable.pays(date(2026, 4, 30)) and not payable.pays(date(2026, 5, 2))


def test_a_validity_inside_closed_months_pays_nothing():
    close(date(2026, 4, 1), MAY)
    payable = payable_bills(valid_from=date(2026, 4, 3), valid_until=date(2026, 5, 20))
    assert payable.ranges == [] and payable.pays_nothing


def test_a_validity_reaching_year_9999_is_read_without_walking_its_months():
    payable = payable_bills(valid_from=date(1, 1, 1), valid_until=date(9999, 12, 31))
    assert payable.ranges == [(date(1, 1, 1), date(9999, 12, 31))]
    assert len(payable.ended_open) <= 13


def test_the_posting_pays_exactly_the_bills_the_rule_names(distributor):
    """A coupon valid across a closed month (May) and an open one (June) pays June's
    outstanding bills and none of May's, as `payable_bills` says."""
    f.make_product("ecs")
    account = f.make_accounts(distributor, 1, prefix="PAY-")[0]
    days = [date(2026, 5, 30), date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 2)]
    import_usage([(account, d, "ecs", "10.00") for d in days])
    for d in days:
        daily_bills_make(bill_date=d, enqueue_posting=False)
    account_post_outstanding(sub_account_id=account.pk)
    month_close(month="2026-05")
    coupon = make_coupon(account, amount="100.00", valid_from=date(2026, 5, 15),
                         valid_until=date(2026, 6, 30))
    account_post_outstanding(sub_account_id=account.pk)
    payable = payable_bills(valid_from=coupon.valid_from, valid_until=coupon.valid_until)
    paid = {b.date for b in DailyBill.objects.filter(sub_account=account, deduction_amount__gt=0)}
    assert paid == {d for d in days if payable.pays(d)} == {date(2026, 6, 1), date(2026, 6, 2)}


# ---------------------------------------------------------------------------------------
# The pages


def test_issue_coupon_says_which_bills_new_coupons_pay_and_names_closed_months(
    distributor, dist_admin, client,
):
    close(date(2026, 4, 1), MAY)
    template = f.make_template(distributor, dist_admin, validity_type="fixed",
                               valid_from=date(2026, 4, 15), valid_until=date(2026, 7, 31))
    client.force_login(dist_admin)
    for url in (reverse("coupons:issue", args=[template.pk]), template.get_absolute_url()):
        html = client.get(url).content.decode()
        assert "Which bills these coupons can pay" in html
        assert "2026-06-01 → 2026-07-31" in html
        assert "The bills of 2026-04, 2026-05, closed months, are final" in html


def test_issue_coupon_counts_a_relative_validity_from_today(distributor, dist_admin, client):
    template = f.make_template(distributor, dist_admin, valid_days=30)
    client.force_login(dist_admin)
    html = client.get(reverse("coupons:issue", args=[template.pk])).content.decode()
    today = timezone.localdate()
    assert f"Released today, a coupon is valid {today:%Y-%m-%d} → 2026-07-16 (30 days;" in html
    assert "closed month" not in html


def test_a_sub_accounts_available_coupon_says_which_bills_it_pays(distributor, client):
    account = f.make_accounts(distributor, 1, prefix="PAYS-")[0]
    close(MAY)
    make_coupon(account, valid_from=date(2026, 5, 10), valid_until=date(2026, 6, 20))
    client.force_login(f.make_subaccount_user(account))
    html = client.get(reverse("billing:coupons")).content.decode()
    assert "2026-06-01 → 2026-06-20" in html
    assert "The bills of 2026-05, a closed month, are final: this coupon no longer pays" in html
