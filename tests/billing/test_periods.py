"""Period boundaries in the platform time zone: day edges, months of 28–31 days, a year of
daily bills summing to its monthly bills exactly, and the monthly close's rules."""
import calendar
from collections import defaultdict
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.daily_bills import daily_bills_make
from billing.models import (
    ClosedMonth,
    DailyBill,
    DailyBillLine,
    Deduction,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageRecord,
)
from billing.month_close import month_close
from billing.periods import month_end
from billing.posting import account_post_outstanding, bill_post_deductions
from billing.usage_import import usage_date_for
from couponplatform.exceptions import ApplicationError
from tests import factories as f
from tests.billing.helpers import D, products
from tests.factories import import_usage, make_coupon


@pytest.fixture(autouse=True)
def _platform_time_zone(settings):
    settings.TIME_ZONE = "Asia/Singapore"  # UTC+8, no daylight saving


@pytest.fixture
def account(distributor):
    products("ecs", "oss")
    return f.make_accounts(distributor, 1, prefix="PER-")[0]


def bill_day(day: date) -> None:
    for bill_id in daily_bills_make(bill_date=day, enqueue_posting=False).bill_ids:
        bill_post_deductions(bill_id=bill_id)


@pytest.mark.parametrize(("stamp", "day"), [
    ("2025-03-31", date(2025, 3, 31)),
    ("2025-03-31T23:59:59+08:00", date(2025, 3, 31)),
    ("2025-04-01T00:00:00+08:00", date(2025, 4, 1)),
    ("2025-03-31T15:59:59Z", date(2025, 3, 31)),
    ("2025-03-31T16:00:00Z", date(2025, 4, 1)),
    ("2025-03-31T23:59:59", date(2025, 3, 31)),
    ("2025-04-01T00:00:00", date(2025, 4, 1)),
    ("2025-04-01T00:00:00-05:00", date(2025, 4, 1)),
    ("2025-03-31T11:00:00-05:00", date(2025, 4, 1)),
])
def test_usage_times_fall_on_the_platform_time_zone_day(stamp, day):
    assert usage_date_for(stamp) == day


def test_usage_at_day_and_month_edges_is_in_exactly_one_daily_and_one_monthly_bill(account):
    make_coupon(account, amount="0.05")
    import_usage([
        (account, "2025-03-31T23:59:59+08:00", "ecs", "1.00"),
        (account, "2025-04-01T00:00:00+08:00", "ecs", "2.00"),
        (account, "2025-03-31T15:59:59Z", "oss", "4.00"),
        (account, "2025-03-31T16:00:00Z", "oss", "8.00"),
        (account, "2025-04-30T23:59:59+08:00", "ecs", "16.00"),
        (account, "2025-05-01T00:00:00+08:00", "ecs", "32.00"),
    ])
    for day in (date(2025, 3, 31), date(2025, 4, 1), date(2025, 4, 30), date(2025, 5, 1)):
        bill_day(day)
    for month in ("2025-03", "2025-04", "2025-05"):
        month_close(month=month, today=date(2025, 6, 1))
    daily = dict(DailyBill.objects.values_list("date", "original_amount"))
    assert daily == {date(2025, 3, 31): D("5.00"), date(2025, 4, 1): D("10.00"),
                     date(2025, 4, 30): D("16.00"), date(2025, 5, 1): D("32.00")}
    monthly = dict(MonthlyBill.objects.values_list("month", "original_amount"))
    assert monthly == {date(2025, 3, 1): D("5.00"), date(2025, 4, 1): D("26.00"),
                       date(2025, 5, 1): D("32.00")}
    for record in UsageRecord.objects.select_related("line__bill"):
        bill = record.line.bill
        assert bill.date == record.usage_date
        assert MonthlyBill.objects.filter(
            sub_account=record.sub_account, month=record.usage_date.replace(day=1),
        ).count() == 1
    assert sum(MonthlyBill.objects.values_list("original_amount", flat=True)) == \
        sum(UsageRecord.objects.values_list("amount", flat=True))


@pytest.mark.parametrize(("first", "last"), [
    (date(2025, 2, 1), date(2025, 2, 28)),
    (date(2024, 2, 1), date(2024, 2, 29)),
    (date(2025, 4, 1), date(2025, 4, 30)),
    (date(2025, 1, 1), date(2025, 1, 31)),
    (date(2025, 12, 1), date(2025, 12, 31)),
])
def test_month_end_for_months_of_28_to_31_days(first, last):
    assert month_end(first) == last


def test_daily_bills_sum_to_monthly_bills_over_a_generated_leap_year(distributor):
    """2024: every month length from 29 to 31 days, coupons crossing month ends, two
    accounts (one without coupons), amounts with odd cents."""
    products("ecs", "oss")
    paying, plain = f.make_accounts(distributor, 2, prefix="YEAR-")
    make_coupon(paying, amount="40.00", valid_from=date(2024, 1, 20),
                valid_until=date(2024, 2, 10))
    make_coupon(paying, kind="discount", rate="15", cap="0.50", uses=40,
                valid_from=date(2024, 2, 25), valid_until=date(2024, 4, 5))
    make_coupon(paying, kind="threshold", amount="30.00", min_amount="3.00",
                valid_from=date(2024, 6, 1), valid_until=date(2024, 12, 31), products=["oss"])
    make_coupon(paying, amount="75.55", valid_from=date(2024, 11, 28),
                valid_until=date(2025, 1, 31))
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(366)]
    rows = []
    for i, day in enumerate(days):
        rows.append((paying, day, "ecs", f"{(i * 37) % 500 / 100 + 0.01:.2f}"))
        rows.append((paying, day, "oss", f"{(i * 53) % 700 / 100:.2f}"))
        rows.append((plain, day, "ecs", f"{(i * 11) % 300 / 100 + 1:.2f}"))
    import_usage(rows)
    for day in days:
        daily_bills_make(bill_date=day, enqueue_posting=False)
        # Posting through the account, as released coupons and the sweeper do.
        account_post_outstanding(sub_account_id=paying.pk)
        account_post_outstanding(sub_account_id=plain.pk)
    for month in range(1, 13):
        result = month_close(month=f"2024-{month:02d}", today=date(2025, 1, 1))
        assert result.bill_count == 2

    assert Deduction.objects.count() > 0
    for bill in MonthlyBill.objects.all():
        first = bill.month
        last = month_end(first)
        assert bill.daily_bill_count == calendar.monthrange(first.year, first.month)[1]
        daily = DailyBill.objects.filter(sub_account=bill.sub_account, date__gte=first,
                                         date__lte=last)
        assert bill.original_amount == sum(d.original_amount for d in daily)
        assert bill.deduction_amount == sum(d.deduction_amount for d in daily)
        assert bill.payable_amount == sum(d.payable_amount for d in daily)
        per_product = defaultdict(lambda: D("0"))
        for line in DailyBillLine.objects.filter(bill__in=daily).select_related("product"):
            per_product[line.product.code] += line.deduction_amount
        assert {ln.product.code: ln.deduction_amount
                for ln in MonthlyBillLine.objects.filter(bill=bill).select_related("product")} \
            == dict(per_product)
        per_coupon = defaultdict(lambda: D("0"))
        for deduction in Deduction.objects.filter(line__bill__in=daily):
            per_coupon[deduction.coupon_id] += deduction.amount
        assert dict(MonthlyCouponDeduction.objects.filter(bill=bill)
                    .values_list("coupon_id", "amount")) == dict(per_coupon)
    total_usage = sum(UsageRecord.objects.values_list("amount", flat=True))
    assert sum(MonthlyBill.objects.values_list("original_amount", flat=True)) == total_usage
    # The coupon crossing into January 2025 keeps its balance for 2025's bills.
    assert ClosedMonth.objects.count() == 12


def test_a_month_is_closed_only_once_it_has_ended(account):
    with pytest.raises(ApplicationError, match="has not ended yet; it can be closed from "
                                               "2025-04-01"):
        month_close(month="2025-03", today=date(2025, 3, 31))


def test_a_month_with_unbilled_usage_is_not_closed(account):
    import_usage([(account, date(2025, 3, 5), "ecs", "1.00")])
    with pytest.raises(ApplicationError, match="not billed yet on 2025-03-05"):
        month_close(month="2025-03", today=date(2025, 4, 2))
    assert not ClosedMonth.objects.exists()


def test_a_month_with_unposted_bills_is_not_closed(account):
    import_usage([(account, date(2025, 3, 5), "ecs", "1.00")])
    daily_bills_make(bill_date=date(2025, 3, 5), enqueue_posting=False)
    with pytest.raises(ApplicationError, match="1 daily bill of 2025-03 is still waiting"):
        month_close(month="2025-03", today=date(2025, 4, 2))
    assert not MonthlyBill.objects.exists()


def test_closing_a_month_twice_changes_nothing(account):
    import_usage([(account, date(2025, 3, 5), "ecs", "1.00")])
    bill_day(date(2025, 3, 5))
    first = month_close(month="2025-03", today=date(2025, 4, 2))
    again = month_close(month="2025-03", today=date(2025, 4, 2))
    assert (first.bill_count, first.already_closed) == (1, False)
    assert (again.bill_count, again.already_closed) == (1, True)
    assert MonthlyBill.objects.count() == 1


def test_close_month_command(account, capsys):
    import_usage([(account, date(2024, 3, 5), "ecs", "1.00")])
    bill_day(date(2024, 3, 5))
    call_command("close_month", "--month", "2024-03")
    assert "2024-03 closed: 1 monthly bills" in capsys.readouterr().out
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("close_month", "--month", "March")
