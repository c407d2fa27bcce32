"""Coupon statuses billing moves: expiry (breakage kept), voiding; and what one coupon may
pay on one line."""
from datetime import date, timedelta

import pytest
from django.core.management import call_command

from audit.models import AuditLog
from billing.coupon_status import coupon_void, coupons_expire
from billing.daily_bills import daily_bills_make
from billing.models import DailyBill, DailyBillLine, Deduction
from billing.month_close import month_close
from billing.posting import account_post_outstanding, bill_post_deductions
from couponplatform.exceptions import (
    ApplicationError,
    InvalidTransitionError,
    PermissionDeniedError,
)
from coupons.models import Coupon
from tests import factories as f
from tests.billing.helpers import D, products
from tests.factories import import_usage, make_coupon

DAY = date(2025, 3, 10)


@pytest.fixture
def catalog(db):
    return products("ecs", "oss")


@pytest.fixture
def account(distributor, catalog):
    return f.make_accounts(distributor, 1, prefix="ST-")[0]


def billed_line(account, amount="100.00", day=DAY, product="ecs") -> DailyBillLine:
    import_usage([(account, day, product, amount)])
    daily_bills_make(bill_date=day, enqueue_posting=False)
    return DailyBillLine.objects.get(bill__sub_account=account, bill__date=day,
                                     product__code=product)


# Expiry ---------------------------------------------------------------------------------


def test_coupons_past_valid_until_expire_and_keep_their_balance(account):
    ended = make_coupon(account, amount="40.00", valid_until=date(2025, 3, 9))
    last_day = make_coupon(account, amount="40.00", valid_until=date(2025, 3, 10))
    assert coupons_expire(today=date(2025, 3, 10)) == 1
    ended.refresh_from_db()
    last_day.refresh_from_db()
    assert (ended.status, ended.balance) == (Coupon.Status.EXPIRED, D("40.00"))
    assert last_day.status == Coupon.Status.AVAILABLE
    audit = AuditLog.objects.get(action="coupon.expire", object_id=str(ended.pk))
    assert audit.after == {"status": "expired", "breakage": "40.00"}
    assert coupons_expire(today=date(2025, 3, 10)) == 0


def test_expiry_waits_for_an_unposted_bill_inside_the_validity(account):
    coupon = make_coupon(account, amount="40.00", valid_until=DAY)
    billed_line(account, "10.00")
    assert coupons_expire(today=DAY + timedelta(days=1)) == 0
    account_post_outstanding(sub_account_id=account.pk)
    assert coupons_expire(today=DAY + timedelta(days=1)) == 1
    coupon.refresh_from_db()
    assert (coupon.status, coupon.balance) == (Coupon.Status.EXPIRED, D("30.00"))


def test_expired_coupons_no_longer_pay(account):
    make_coupon(account, amount="40.00", valid_until=DAY)
    coupons_expire(today=DAY + timedelta(days=1))
    billed_line(account, "10.00")
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 0


def test_expire_coupons_command(account, capsys):
    make_coupon(account, valid_until=date(2025, 1, 31))
    call_command("expire_coupons", "--today", "2025-02-01")
    assert "1 coupon expired" in capsys.readouterr().out


def test_expiry_batches_cover_every_coupon(account):
    for _ in range(5):
        make_coupon(account, amount="1.00", valid_until=date(2025, 1, 31))
    assert coupons_expire(today=date(2025, 2, 1), batch_size=2) == 5


# Voiding --------------------------------------------------------------------------------


def test_a_partner_admin_voids_the_unused_balance_and_deductions_stay(account, dist_admin):
    coupon = make_coupon(account, amount="100.00")
    line = billed_line(account, "30.00")
    account_post_outstanding(sub_account_id=account.pk)
    voided = coupon_void(coupon=coupon, acting_user=dist_admin, reason="  Customer left  ")
    assert (voided.status, voided.balance, voided.voided_amount, voided.void_reason) == (
        Coupon.Status.VOIDED, D("0.00"), D("70.00"), "Customer left")
    assert Deduction.objects.filter(coupon=coupon, line=line, amount=D("30.00")).exists()
    audit = AuditLog.objects.get(action="coupon.void", object_id=str(coupon.pk))
    assert (audit.actor, audit.reason) == (dist_admin, "Customer left")
    assert audit.before["balance"] == "70.00" and audit.after["voided_amount"] == "70.00"
    # Who and when are kept on the coupon beside the reason, as the audit row has them.
    stored = Coupon.objects.get(pk=coupon.pk)
    assert (stored.voided_by, stored.void_reason) == (dist_admin, "Customer left")
    assert stored.voided_at == voided.voided_at
    assert abs(stored.voided_at - audit.created_at).total_seconds() < 5


def test_a_voided_coupon_pays_nothing_more(account, dist_admin):
    coupon = make_coupon(account, amount="100.00")
    coupon_void(coupon=coupon, acting_user=dist_admin, reason="mistake")
    billed_line(account, "30.00")
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 0


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_a_partner_admin_may_void(account, distributor, role):
    coupon = make_coupon(account)
    user = f.make_member(distributor, role)
    with pytest.raises(PermissionDeniedError, match="Only a partner admin"):
        coupon_void(coupon=coupon, acting_user=user, reason="x")
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.AVAILABLE


def test_another_partners_admin_may_not_void(account, other_admin):
    coupon = make_coupon(account)
    with pytest.raises(PermissionDeniedError):
        coupon_void(coupon=coupon, acting_user=other_admin, reason="x")


def test_a_reason_is_required(account, dist_admin):
    coupon = make_coupon(account)
    with pytest.raises(ApplicationError, match="reason"):
        coupon_void(coupon=coupon, acting_user=dist_admin, reason="   ")
    assert not AuditLog.objects.filter(action="coupon.void").exists()


@pytest.mark.parametrize("status", ["used_up", "expired", "voided"])
def test_only_an_available_coupon_can_be_voided(account, dist_admin, status):
    coupon = make_coupon(account, amount="10.00")
    if status == "used_up":
        billed_line(account, "10.00")
        account_post_outstanding(sub_account_id=account.pk)
    elif status == "expired":
        Coupon.objects.filter(pk=coupon.pk).update(status=status)
    else:
        coupon_void(coupon=coupon, acting_user=dist_admin, reason="first")
    with pytest.raises(InvalidTransitionError, match="only an available coupon"):
        coupon_void(coupon=coupon, acting_user=dist_admin, reason="again")


# One coupon on one line, through the posting ------------------------------------------
# What a direct deduction service once proved, on the one path that deducts: the posting.


def test_posting_takes_the_amount_from_balance_line_and_bill(account):
    coupon = make_coupon(account, kind="discount", rate="60", cap="50.00", uses=2)  # 100.00
    line = billed_line(account, "50.00")
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 1
    deduction = Deduction.objects.get(coupon=coupon, line=line)
    assert (deduction.amount, deduction.bill_date, deduction.partner_id) == (
        D("30.00"), DAY, coupon.partner_id)
    coupon.refresh_from_db()
    line.refresh_from_db()
    assert coupon.balance == D("70.00")
    assert (line.deduction_amount, line.payable_amount) == (D("30.00"), D("20.00"))
    assert DailyBill.objects.get().payable_amount == D("20.00")


@pytest.mark.parametrize(("setup", "deducted"), [
    ("plain", "100.00"),  # a 200.00 line: never more than the coupon's balance
    ("small_line", "20.00"),  # a 20.00 line: never more than the line owes
    ("paid_before", "20.00"),  # posted twice: a discount pays a line once (one use)
    ("other_account", None),
    ("euro", None),
    ("not_yet_valid", None),
    ("voided", None),
    ("discount_cap", "5.00"),  # 50 % of 200.00, at most 5.00 a use
])
def test_posting_pays_only_what_the_coupon_may(account, distributor, setup, deducted):
    line = billed_line(account, "20.00" if setup == "small_line" else "200.00")
    kwargs = {}
    if setup == "other_account":
        kwargs["account"] = f.make_accounts(distributor, 1, prefix="OT-")[0]
    if setup == "euro":
        kwargs["currency"] = "EUR"
    if setup == "not_yet_valid":
        kwargs["valid_from"] = DAY + timedelta(days=1)
    if setup == "discount_cap":
        kwargs.update(kind="discount", rate="50", cap="5.00", uses=3)
    if setup == "paid_before":
        kwargs.update(kind="discount", rate="10", cap="50.00", uses=3)
    coupon = make_coupon(kwargs.pop("account", account), amount="100.00", **kwargs)
    if setup == "paid_before":
        account_post_outstanding(sub_account_id=account.pk)
    if setup == "voided":
        Coupon.objects.filter(pk=coupon.pk).update(
            status="voided", balance=0, voided_amount=coupon.amount)
    before = D("0.00") if setup == "voided" else coupon.amount
    account_post_outstanding(sub_account_id=account.pk)
    taken = list(Deduction.objects.filter(coupon=coupon, line=line).values_list(
        "amount", flat=True))
    coupon.refresh_from_db()
    line.refresh_from_db()
    if deducted is None:
        assert taken == []
        assert coupon.balance == before
        assert line.deduction_amount == D("0.00")
    else:
        assert taken == [D(deducted)]
        assert coupon.balance == before - D(deducted)
        assert line.deduction_amount == D(deducted)
        assert line.payable_amount == line.original_amount - D(deducted)


def test_posting_leaves_a_closed_month_alone(account):
    line = billed_line(account, "50.00", day=date(2025, 2, 3))
    account_post_outstanding(sub_account_id=account.pk)
    month_close(month="2025-02", today=date(2025, 3, 3))
    coupon = make_coupon(account, amount="100.00")
    assert account_post_outstanding(sub_account_id=account.pk).deductions == 0
    assert bill_post_deductions(bill_id=line.bill_id).deductions == 0
    coupon.refresh_from_db()
    line.refresh_from_db()
    assert coupon.balance == D("100.00")
    assert (line.deduction_amount, line.payable_amount) == (D("0.00"), D("50.00"))
