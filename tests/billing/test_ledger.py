"""check_ledger: clean after real work, and it names every row broken behind its back."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from billing.daily_bills import daily_bills_make
from billing.ledger import ledger_check
from billing.models import (
    DailyBill,
    DailyBillLine,
    Deduction,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageRecord,
)
from billing.month_close import month_close
from billing.posting import account_post_outstanding
from coupons.models import Coupon
from tests import factories as f
from tests.billing.helpers import products
from tests.factories import import_usage, make_coupon

ONE = Decimal("1.00")


@pytest.fixture
def world(distributor):
    """Two accounts, posted bills over two months, February closed."""
    products("ecs", "oss")
    a, b = f.make_accounts(distributor, 2, prefix="LED-")
    cash = make_coupon(a, amount="50.00")
    discount = make_coupon(a, kind="discount", rate="10", cap="3.00", uses=4)
    make_coupon(b, amount="5.00")
    days = [date(2025, 2, 27), date(2025, 2, 28), date(2025, 3, 1)]
    import_usage([(acc, d, p, "12.34") for acc in (a, b) for d in days for p in ("ecs", "oss")])
    for d in days:
        daily_bills_make(bill_date=d, enqueue_posting=False)
    account_post_outstanding(sub_account_id=a.pk)
    account_post_outstanding(sub_account_id=b.pk)
    month_close(month="2025-02", today=date(2025, 3, 2))
    assert ledger_check() == []
    return {"a": a, "b": b, "cash": cash, "discount": discount}


def rules(found) -> set[str]:
    return {d.rule for d in found}


def test_the_ledger_is_clean_after_real_work(world, capsys):
    call_command("check_ledger")
    assert "Ledger OK: 0 discrepancies" in capsys.readouterr().out


def test_a_balance_changed_without_a_deduction_is_named(world, ledger_broken):
    coupon = world["cash"]
    Coupon.objects.filter(pk=coupon.pk).update(balance=F("balance") + ONE)
    found = ledger_check()
    # The coupon was used up, so its status now contradicts the balance as well.
    assert rules(found) == {"deductions ≠ amount − balance − voided",
                            "used up with balance and uses left"}
    assert {d.obj for d in found} == {f"coupon #{coupon.pk} {coupon.code}"}


def test_a_line_deduction_changed_behind_the_ledger_is_named(world, ledger_broken):
    line = DailyBillLine.objects.filter(bill__sub_account=world["a"], deduction_amount__gt=0) \
        .order_by("pk").first()
    DailyBillLine.objects.filter(pk=line.pk).update(
        deduction_amount=F("deduction_amount") - ONE, payable_amount=F("payable_amount") + ONE)
    found = ledger_check()
    assert {"deductions ≠ the line's deduction", "bill totals ≠ the sum of its lines"} \
        <= rules(found)
    assert any(d.obj.startswith(f"daily bill line #{line.pk} ") for d in found)


def test_a_deduction_amount_changed_is_named_on_its_coupon_and_line(world, ledger_broken):
    deduction = Deduction.objects.filter(coupon=world["cash"]).order_by("pk").first()
    Deduction.objects.filter(pk=deduction.pk).update(amount=F("amount") - ONE)
    assert {"deductions ≠ amount − balance − voided", "deductions ≠ the line's deduction"} \
        <= rules(ledger_check())


def test_a_deduction_on_another_accounts_bill_is_named(world, ledger_broken):
    line = DailyBillLine.objects.filter(bill__sub_account=world["b"]).order_by("pk").last()
    foreign = make_coupon(world["a"], amount="10.00")
    Deduction.objects.create(
        coupon=foreign, line=line, sub_account=world["a"], partner=foreign.partner,
        bill_date=line.bill.date, amount=ONE,
    )
    assert "deduction on another account's bill" in rules(ledger_check())


def test_a_monthly_bill_that_differs_from_its_daily_bills_is_named(world, ledger_broken):
    bill = MonthlyBill.objects.get(sub_account=world["a"])
    MonthlyBill.objects.filter(pk=bill.pk).update(
        original_amount=F("original_amount") + ONE, payable_amount=F("payable_amount") + ONE)
    found = ledger_check()
    assert rules(found) == {"monthly bill ≠ the sum of its daily bills"}
    assert found[0].obj == f"monthly bill 2025-02 of account #{world['a'].pk} (#{bill.pk})"


def test_monthly_lines_and_coupon_sums_are_checked_too(world, ledger_broken):
    MonthlyBillLine.objects.filter(bill__sub_account=world["a"]).filter(
        pk=MonthlyBillLine.objects.order_by("pk").values("pk")[:1],
    ).update(original_amount=F("original_amount") + ONE, payable_amount=F("payable_amount") + ONE)
    MonthlyCouponDeduction.objects.filter(coupon=world["cash"]).update(
        amount=F("amount") + ONE)
    assert {"monthly line ≠ the sum of its daily lines",
            "monthly coupon deduction ≠ the sum of its deductions"} <= rules(ledger_check())


def test_usage_left_off_its_bill_is_named(world, ledger_broken):
    record = UsageRecord.objects.filter(sub_account=world["b"]).order_by("pk").first()
    UsageRecord.objects.filter(pk=record.pk).update(line=None)
    assert {"usage left off its day's bill", "usage ≠ the line's original amount"} \
        <= rules(ledger_check())


@pytest.mark.parametrize(("change", "rule"), [
    ({"status": "used_up"}, "used up with balance and uses left"),
    ({"status": "voided"}, "voided with balance left"),
])
def test_a_status_that_contradicts_the_balance_is_named(world, ledger_broken, change, rule):
    coupon = make_coupon(world["a"], amount="10.00")
    Coupon.objects.filter(pk=coupon.pk).update(**change)
    assert rules(ledger_check()) == {rule}


def test_an_available_coupon_with_nothing_left_is_named(world, ledger_broken):
    coupon = world["discount"]  # all four uses spent on the six lines
    Coupon.objects.filter(pk=coupon.pk).update(status="available")
    assert rules(ledger_check()) == {"available with nothing left"}
    Coupon.objects.filter(pk=coupon.pk).update(status="used_up", uses_left=1)
    assert rules(ledger_check()) == {"discount uses ≠ deductions",
                                     "used up with balance and uses left"}


def test_check_ledger_exits_non_zero_naming_the_rows(world, ledger_broken, capsys):
    coupon = world["cash"]
    Coupon.objects.filter(pk=coupon.pk).update(balance=F("balance") + ONE)
    with pytest.raises(CommandError) as info:
        call_command("check_ledger")
    assert info.value.returncode == 1
    assert "2 ledger discrepancies" in str(info.value)
    assert f"coupon #{coupon.pk} {coupon.code}" in capsys.readouterr().err


def test_bill_totals_are_checked_against_their_lines(world, ledger_broken):
    bill = DailyBill.objects.filter(sub_account=world["b"]).order_by("pk").first()
    DailyBill.objects.filter(pk=bill.pk).update(
        original_amount=F("original_amount") + ONE, payable_amount=F("payable_amount") + ONE)
    found = ledger_check()
    assert "bill totals ≠ the sum of its lines" in rules(found)
