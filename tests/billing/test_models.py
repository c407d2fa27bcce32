"""What the database itself refuses: the constraints behind the ledger's invariants."""
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from billing.daily_bills import daily_bills_make
from billing.models import DailyBill, DailyBillLine, Deduction, UsageRecord
from billing.posting import account_post_outstanding
from tests import factories as f
from tests.billing.helpers import D, import_usage, make_coupon, products

DAY = date(2025, 7, 1)


@pytest.fixture
def posted(distributor):
    products("ecs")
    account = f.make_accounts(distributor, 1, prefix="MOD-")[0]
    coupon = make_coupon(account, amount="10.00")
    import_usage([(account, DAY, "ecs", "25.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    account_post_outstanding(sub_account_id=account.pk)
    return account, coupon, DailyBillLine.objects.get(bill__sub_account=account)


def refused(**update) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        DailyBillLine.objects.update(**update)


def test_one_deduction_per_coupon_and_line(posted):
    account, coupon, line = posted
    with pytest.raises(IntegrityError), transaction.atomic():
        Deduction.objects.create(coupon=coupon, line=line, sub_account=account,
                                 partner=coupon.partner, bill_date=DAY, amount=D("1.00"))


def test_a_deduction_above_the_original_is_refused(posted):
    refused(deduction_amount=D("30.00"), payable_amount=D("-5.00"))


def test_a_negative_deduction_is_refused(posted):
    refused(deduction_amount=D("-1.00"), payable_amount=D("26.00"))


def test_payable_must_be_original_minus_deduction(posted):
    refused(payable_amount=F("payable_amount") + Decimal("0.01"))


def test_a_deduction_must_be_above_zero(posted):
    with pytest.raises(IntegrityError), transaction.atomic():
        Deduction.objects.update(amount=0)


def test_one_bill_per_account_and_day(posted):
    account, _, _ = posted
    with pytest.raises(IntegrityError), transaction.atomic():
        DailyBill.objects.create(sub_account=account, date=DAY, currency="USD")


def test_usage_that_reached_a_made_bill_is_added_to_it_not_lost(posted):
    """Import refuses such usage; a row written around it still lands on the day's bill."""
    account, _, line = posted
    UsageRecord.objects.create(sub_account=account, usage_date=DAY, product=line.product,
                               amount=D("5.00"), currency="USD")
    result = daily_bills_make(bill_date=DAY, enqueue_posting=False)
    assert result.bill_ids == [line.bill_id]
    line.refresh_from_db()
    assert (line.original_amount, line.deduction_amount, line.payable_amount) == (
        D("30.00"), D("10.00"), D("20.00"))
    assert DailyBill.objects.get(pk=line.bill_id).original_amount == D("30.00")
