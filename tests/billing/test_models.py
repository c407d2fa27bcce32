"""What the database itself refuses: the constraints behind the ledger's invariants."""
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing import posting
from billing.daily_bills import daily_bills_make
from billing.models import DailyBill, DailyBillLine, Deduction, UsageRecord
from billing.posting import account_post_outstanding, bill_post_deductions
from couponplatform.db import bulk_insert
from tests import factories as f
from tests.billing.helpers import D, money_state, products
from tests.billing.test_concurrency import run_together
from tests.factories import import_usage, make_coupon

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


def test_the_posting_writer_refuses_a_second_deduction_of_a_coupon_on_a_line(posted):
    """The posting's own insert (COPY on PostgreSQL) of a row that repeats a (coupon, line)."""
    account, coupon, line = posted
    row = (coupon.pk, line.pk, account.pk, coupon.partner_id, DAY, D("1.00"), timezone.now())
    with pytest.raises(IntegrityError, match="deduction_once_per_line"), transaction.atomic():
        bulk_insert(Deduction, posting.DEDUCTION_FIELDS, [row])
    assert Deduction.objects.filter(coupon=coupon, line=line).count() == 1


def forget_what_coupons_paid(monkeypatch) -> None:
    """The posting as if it no longer read which coupons already paid a line: only the
    database's one-deduction-per-(coupon, line) stops a coupon paying the line twice."""
    line_in = posting._line_in
    monkeypatch.setattr(posting, "_line_in", lambda line, bill, paid_by: line_in(line, bill, ()))


@pytest.fixture
def discounted(distributor):
    """A 100.00 line paid 5.00 by a 10 % discount coupon (cap 5.00 a use, 3 uses), which
    still has 10.00 and 2 uses left: a posting that forgot it paid the line would use it
    on the same line again."""
    products("ecs")
    account = f.make_accounts(distributor, 1, prefix="DUP-")[0]
    coupon = make_coupon(account, kind="discount", rate="10", cap="5.00", uses=3)
    import_usage([(account, DAY, "ecs", "100.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    return account, coupon


def test_a_posting_that_forgot_what_a_coupon_paid_is_stopped_by_the_database(
    discounted, monkeypatch,
):
    account, coupon = discounted
    account_post_outstanding(sub_account_id=account.pk)
    posted = money_state(account)
    assert posted["deductions"] == [(0, DAY, "ecs", D("5.00"))]
    account_post_outstanding(sub_account_id=account.pk)  # as it is: nothing more to pay
    assert money_state(account) == posted

    forget_what_coupons_paid(monkeypatch)
    with pytest.raises(IntegrityError, match="deduction_once_per_line"):
        account_post_outstanding(sub_account_id=account.pk)
    assert money_state(account) == posted, "half-posted"


def test_two_postings_at_once_that_forgot_what_a_coupon_paid_write_one_deduction(
    postgres_only, transactional_db, discounted, monkeypatch,
):
    """On PostgreSQL, two connections: the second posting waits on the coupon lock, then
    tries the same (coupon, line) again; the unique index refuses it, whole."""
    account, coupon = discounted
    bill = DailyBill.objects.get(sub_account=account)
    forget_what_coupons_paid(monkeypatch)
    results, refusals, errors = run_together(
        [lambda: bill_post_deductions(bill_id=bill.pk)] * 2)
    assert len(results) == 1 and refusals == []
    assert [type(e) for e in errors] == [IntegrityError], errors
    assert "deduction_once_per_line" in str(errors[0])
    state = money_state(account)
    assert state["deductions"] == [(0, DAY, "ecs", D("5.00"))]
    assert state["coupons"][0][1:4] == (D("10.00"), "available", 2)


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
