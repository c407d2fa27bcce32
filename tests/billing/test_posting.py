"""Daily bills from usage, and coupons paying them: posting, repeats, releases, commands."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from audit.models import AuditLog
from billing import sweeps, tasks
from billing.daily_bills import daily_bills_make
from billing.models import DailyBill, DailyBillLine, Deduction, UsageRecord
from billing.month_close import month_close
from billing.posting import account_post_outstanding, bill_post_deductions
from couponplatform import dispatch
from couponplatform.exceptions import ApplicationError
from coupons.models import Coupon
from coupons.services import coupons_released
from tests import factories as f
from tests.billing.helpers import D, money_state, products
from tests.factories import import_usage, make_coupon

DAY = date(2025, 3, 10)


@pytest.fixture
def catalog(db):
    return products("ecs", "oss", "rds")


@pytest.fixture
def account(distributor, catalog):
    return f.make_accounts(distributor, 1, prefix="POST-")[0]


def bill_of(account, day=DAY) -> DailyBill:
    return DailyBill.objects.get(sub_account=account, date=day)


def test_daily_bill_has_one_line_per_product_summing_the_usage(account):
    import_usage([(account, DAY, "ecs", "10.00"), (account, DAY, "ecs", "5.50"),
                  (account, DAY, "oss", "2.25"), (account, DAY + timedelta(days=1), "ecs", "9")])
    result = daily_bills_make(bill_date=DAY, enqueue_posting=False)
    assert result.count == 1
    bill = bill_of(account)
    lines = {ln.product.code: ln for ln in bill.lines.select_related("product")}
    assert {k: (v.original_amount, v.deduction_amount, v.payable_amount)
            for k, v in lines.items()} == {
        "ecs": (D("15.50"), D("0.00"), D("15.50")), "oss": (D("2.25"), D("0.00"), D("2.25")),
    }
    assert (bill.original_amount, bill.payable_amount, bill.currency) == (
        D("17.75"), D("17.75"), "USD")
    assert UsageRecord.objects.filter(usage_date=DAY, line__isnull=True).count() == 0
    assert UsageRecord.objects.filter(usage_date=DAY + timedelta(days=1), line=None).count() == 1


def test_making_a_day_twice_makes_nothing_more(account):
    import_usage([(account, DAY, "ecs", "10.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    again = daily_bills_make(bill_date=DAY, enqueue_posting=False)
    assert again.count == 0
    assert DailyBill.objects.count() == 1 and DailyBillLine.objects.count() == 1


def test_a_day_without_usage_makes_no_bill(account):
    assert daily_bills_make(bill_date=DAY, enqueue_posting=False).count == 0


def test_cash_coupon_pays_and_is_used_up_at_zero(account):
    coupon = make_coupon(account, amount="50.00")
    import_usage([(account, DAY, "ecs", "80.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    result = bill_post_deductions(bill_id=bill_of(account).pk)
    assert (result.deductions, result.amount) == (1, D("50.00"))
    coupon.refresh_from_db()
    assert (coupon.balance, coupon.status) == (D("0.00"), Coupon.Status.USED_UP)
    line = DailyBillLine.objects.get(bill__sub_account=account)
    assert (line.deduction_amount, line.payable_amount) == (D("50.00"), D("30.00"))
    assert bill_of(account).payable_amount == D("30.00")
    assert bill_of(account).posted_at is not None
    audit = AuditLog.objects.get(action="coupon.used_up", object_id=str(coupon.pk))
    assert audit.actor is None and audit.after["status"] == "used_up"


def test_posting_twice_in_a_row_leaves_one_set_of_rows(account):
    make_coupon(account, amount="30.00")
    make_coupon(account, kind="discount", rate="10", cap="5.00", uses=2)
    import_usage([(account, DAY, "ecs", "40.00"), (account, DAY, "oss", "12.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    bill_id = bill_of(account).pk
    first = bill_post_deductions(bill_id=bill_id)
    after_first = money_state(account)
    second = bill_post_deductions(bill_id=bill_id)
    assert first.deductions == 3 and second.deductions == 0
    assert money_state(account) == after_first
    # ecs: discount 4.00, cash 30.00; oss: discount 1.20, cash nothing left.
    assert after_first["lines"] == [
        (DAY, "ecs", D("40.00"), D("34.00"), D("6.00")),
        (DAY, "oss", D("12.00"), D("1.20"), D("10.80")),
    ]


def test_every_posting_task_run_twice_changes_nothing_the_second_time(account):
    make_coupon(account, amount="25.00")
    import_usage([(account, DAY, "ecs", "40.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    bill_id = bill_of(account).pk
    tasks.bill_post_deductions_task.delay(bill_id)
    state = money_state(account)
    tasks.bill_post_deductions_task.delay(bill_id)
    tasks.bills_post_task.delay([bill_id])
    tasks.bills_post_task.delay([bill_id])
    tasks.account_post_outstanding_task.delay(account.pk)
    tasks.account_post_outstanding_task.delay(account.pk)
    tasks.accounts_post_outstanding_batch_task.delay([account.pk])
    tasks.accounts_post_outstanding_batch_task.delay([account.pk])
    assert money_state(account) == state
    assert Deduction.objects.count() == 1


def test_discount_coupon_is_used_up_when_its_uses_run_out(account):
    coupon = make_coupon(account, kind="discount", rate="50", cap="10.00", uses=2)
    import_usage([(account, DAY, "ecs", "8.00"), (account, DAY, "oss", "100.00"),
                  (account, DAY, "rds", "4.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    bill_post_deductions(bill_id=bill_of(account).pk)
    coupon.refresh_from_db()
    # Lines in product order: ecs 4.00 (50 %), oss capped at 10.00; rds gets no use left.
    assert (coupon.uses_left, coupon.balance, coupon.status) == (
        0, D("6.00"), Coupon.Status.USED_UP)
    assert sorted(Deduction.objects.values_list("line__product__code", "amount")) == [
        ("ecs", D("4.00")), ("oss", D("10.00"))]


def test_threshold_coupon_pays_only_lines_reaching_its_minimum(account):
    make_coupon(account, kind="threshold", amount="20.00", min_amount="200.00")
    import_usage([(account, DAY, "ecs", "199.99"), (account, DAY, "oss", "200.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    bill_post_deductions(bill_id=bill_of(account).pk)
    assert list(Deduction.objects.values_list("line__product__code", "amount")) == [
        ("oss", D("20.00"))]


def test_coupons_of_another_account_or_status_never_pay(account, distributor):
    other = f.make_accounts(distributor, 1, prefix="OTHER-")[0]
    make_coupon(other, amount="100.00")
    voided = make_coupon(account, amount="100.00")
    Coupon.objects.filter(pk=voided.pk).update(
        status=Coupon.Status.VOIDED, voided_amount=voided.amount, balance=0)
    import_usage([(account, DAY, "ecs", "10.00")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    assert bill_post_deductions(bill_id=bill_of(account).pk).deductions == 0
    assert bill_of(account).payable_amount == D("10.00")


def test_run_billing_makes_bills_and_posts_them_through_celery(
    account, django_capture_on_commit_callbacks,
):
    make_coupon(account, amount="15.00")
    import_usage([(account, DAY, "ecs", "10.00"), (account, DAY, "oss", "10.00")])
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_billing", "--date", DAY.isoformat())
    bill = bill_of(account)
    assert (bill.deduction_amount, bill.payable_amount) == (D("15.00"), D("5.00"))
    assert bill.posted_at is not None


def test_run_billing_refuses_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_billing", "--date", "10/03/2025")


def test_released_coupons_pay_outstanding_bills_inside_their_validity(
    account, django_capture_on_commit_callbacks,
):
    days = [DAY + timedelta(days=i) for i in range(4)]
    import_usage([(account, d, "ecs", "10.00") for d in days])
    for d in days:
        daily_bills_make(bill_date=d, enqueue_posting=False)
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 0
    assert DailyBill.objects.filter(posted_at__isnull=True).count() == 0
    # Valid from the second day on: 25.00 pays days 2 and 3 whole and 5.00 of day 4, in
    # date order; the first day is outside its validity.
    make_coupon(account, amount="25.00", valid_from=days[1], valid_until=days[3])
    with django_capture_on_commit_callbacks(execute=True):
        coupons_released.send(sender=Coupon, request_id=0, sub_account_ids=[account.pk])
    paid = dict(DailyBill.objects.filter(sub_account=account)
                .values_list("date", "deduction_amount"))
    assert paid == {days[0]: D("0"), days[1]: D("10.00"), days[2]: D("10.00"),
                    days[3]: D("5.00")}


def test_a_closed_month_is_final_and_not_posted_again(account):
    import_usage([(account, date(2025, 2, 27), "ecs", "10.00")])
    daily_bills_make(bill_date=date(2025, 2, 27), enqueue_posting=False)
    account_post_outstanding(sub_account_id=account.pk)
    month_close(month="2025-02", today=date(2025, 3, 2))
    make_coupon(account, amount="50.00")
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 0
    bill = DailyBill.objects.get(sub_account=account)
    assert bill_post_deductions(bill_id=bill.pk).deductions == 0
    with pytest.raises(ApplicationError, match="closed"):
        daily_bills_make(bill_date=date(2025, 2, 28))


def test_sweeper_reposts_only_bills_whose_task_was_lost(account, monkeypatch):
    import_usage([(account, DAY, "ecs", "10.00"), (account, DAY + timedelta(days=1), "ecs", "1")])
    daily_bills_make(bill_date=DAY, enqueue_posting=False)
    daily_bills_make(bill_date=DAY + timedelta(days=1), enqueue_posting=False)
    old = bill_of(account)
    DailyBill.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda name, ids: sent.append(ids))
    assert sweeps.daily_bills_post_pending() == 1
    assert sent == [[old.pk]]


def test_money_tasks_ack_late_and_retry_transient_errors():
    for task in (tasks.bill_post_deductions_task, tasks.account_post_outstanding_task,
                 tasks.bills_post_task, tasks.accounts_post_outstanding_batch_task,
                 tasks.daily_bills_make_task, tasks.month_close_task, tasks.coupons_expire_task):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert OperationalError in task.autoretry_for


def test_posting_a_missing_bill_is_refused(db):
    with pytest.raises(ApplicationError, match="does not exist"):
        bill_post_deductions(bill_id=987654)


def test_month_bills_posted_in_date_order_across_bills(account):
    days = [DAY, DAY + timedelta(days=1)]
    import_usage([(account, d, "ecs", "30.00") for d in days])
    for d in days:
        daily_bills_make(bill_date=d, enqueue_posting=False)
    make_coupon(account, amount="40.00")
    account_post_outstanding(sub_account_id=account.pk)
    assert list(DailyBill.objects.order_by("date").values_list("deduction_amount", flat=True)) \
        == [D("30.00"), D("10.00")]
    assert Decimal(Coupon.objects.get(sub_account=account).balance) == D("0.00")


def test_coupons_released_through_approval_pay_the_accounts_outstanding_bills(
    distributor, dist_admin, catalog, django_capture_on_commit_callbacks,
):
    """The whole path: submit → auto-approve → release → signal → posting task."""
    distributor.requires_bd_approval = False
    distributor.save(update_fields=["requires_bd_approval"])
    account = f.make_accounts(distributor, 1, prefix="REL-")[0]
    today = timezone.localdate()
    billed = today - timedelta(days=3)
    import_usage([(account, billed, "ecs", "70.00"), (account, today - timedelta(days=20),
                                                      "ecs", "9.00")])
    for day in (billed, today - timedelta(days=20)):
        daily_bills_make(bill_date=day, enqueue_posting=False)
    account_post_outstanding(sub_account_id=account.pk)
    template = f.make_template(
        distributor, dist_admin, face_value=Decimal("50.00"),
        **f.fixed_window(days_from_today=-10, length=40),
    )
    with django_capture_on_commit_callbacks(execute=True):
        f.submit(template, dist_admin, [account])
    coupon = Coupon.objects.get(sub_account=account)
    assert (coupon.balance, coupon.status) == (D("0.00"), Coupon.Status.USED_UP)
    assert dict(DailyBill.objects.filter(sub_account=account)
                .values_list("date", "deduction_amount")) == {
        billed: D("50.00"), today - timedelta(days=20): D("0.00")}


def test_released_postings_sweep_pays_outstanding_bills_when_the_release_task_was_lost(
    distributor, dist_admin, catalog, django_capture_on_commit_callbacks,
):
    """The broker was down when the release committed: its posting task was never
    published. The request stays flagged, and the sweeper posts the accounts itself."""
    from billing.sweeps import released_postings_sweep
    from coupons.models import IssuanceRequest

    distributor.requires_bd_approval = False
    distributor.save(update_fields=["requires_bd_approval"])
    account = f.make_accounts(distributor, 1, prefix="LOST-")[0]
    billed = timezone.localdate() - timedelta(days=2)
    import_usage([(account, billed, "ecs", "70.00")])
    daily_bills_make(bill_date=billed, enqueue_posting=False)
    account_post_outstanding(sub_account_id=account.pk)  # posted; nothing paid it yet
    template = f.make_template(
        distributor, dist_admin, face_value=Decimal("50.00"),
        **f.fixed_window(days_from_today=-10, length=40),
    )
    # Run the submit's callbacks (the release), but not the release's own (the lost task).
    with django_capture_on_commit_callbacks(execute=False) as submit_callbacks:
        request = f.submit(template, dist_admin, [account])
    with django_capture_on_commit_callbacks(execute=False):
        for callback in submit_callbacks:
            callback()
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.ISSUED and request.postings_pending
    bill = DailyBill.objects.get(sub_account=account, date=billed)
    assert bill.deduction_amount == D("0.00")

    assert released_postings_sweep() == 0  # not yet: the task may only be slow
    IssuanceRequest.objects.filter(pk=request.pk).update(
        issued_at=timezone.now() - timedelta(minutes=11),
    )
    assert released_postings_sweep() == 1
    bill.refresh_from_db()
    request.refresh_from_db()
    assert bill.deduction_amount == D("50.00") and bill.payable_amount == D("20.00")
    assert not request.postings_pending
    assert released_postings_sweep() == 0  # confirmed: a second sweep does nothing
    assert Deduction.objects.filter(line__bill=bill).count() == 1
