"""Races on PostgreSQL with real connections: threads released together by a barrier."""
import threading
from datetime import date, timedelta

import pytest
from django.db import connections

from billing.coupon_status import coupons_expire
from billing.daily_bills import daily_bills_make
from billing.models import DailyBill, Deduction
from billing.posting import account_post_outstanding, bill_post_deductions
from couponplatform.exceptions import ApplicationError
from coupons.models import Coupon
from tests import factories as f
from tests.billing.helpers import D, money_state, products
from tests.factories import import_usage, make_coupon

pytestmark = pytest.mark.race
DAY = date(2025, 5, 20)


def run_together(calls: list) -> tuple[list, list, list]:
    """Run each call in its own thread and connection, all released at once.

    Returns (results, refusals, unexpected errors).
    """
    barrier = threading.Barrier(len(calls))
    results, refusals, errors = [], [], []
    lock = threading.Lock()

    def worker(call):
        try:
            barrier.wait(timeout=30)
            outcome = call()
            with lock:
                results.append(outcome)
        except ApplicationError as exc:
            with lock:
                refusals.append(exc)
        except Exception as exc:  # noqa: BLE001 — every other error fails the test
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, refusals, errors


def test_overspend_race_64_postings_take_exactly_the_coupon_amount(
    postgres_only, transactional_db, distributor,
):
    """QUALITY.md's overspend race on the path that deducts: one 1,000.00 coupon, 64 daily
    bills of 30.00 each, and 64 threads each posting one of them at once. The coupon pays
    33 bills in full and one with its last 10.00, never a cent more; the rest find it used
    up. Seen to fail with the posting's coupon lock removed: 62 of the 64 postings died in
    deadlocks (each had locked its bill, then queued on the coupon's row)."""
    account = f.make_accounts(distributor, 1, prefix="RACE-")[0]
    products("ecs")
    days = [date(2025, 3, 1) + timedelta(days=i) for i in range(64)]
    import_usage([(account, day, "ecs", "30.00") for day in days])
    for day in days:
        daily_bills_make(bill_date=day, enqueue_posting=False)
    coupon = make_coupon(account, amount="1000.00")
    bills = list(DailyBill.objects.filter(sub_account=account).values_list("pk", flat=True))
    assert len(bills) == 64

    results, refusals, errors = run_together([
        (lambda bill_id=bill_id: bill_post_deductions(bill_id=bill_id)) for bill_id in bills
    ])

    assert errors == [], f"unhandled errors: {errors[:3]}"
    assert refusals == []
    assert len(results) == 64
    coupon.refresh_from_db()
    assert (coupon.balance, coupon.status) == (D("0.00"), Coupon.Status.USED_UP)
    taken = sorted(Deduction.objects.filter(coupon=coupon).values_list("amount", flat=True))
    assert taken == [D("10.00")] + [D("30.00")] * 33
    assert sum(b.deduction_amount for b in DailyBill.objects.filter(sub_account=account)) \
        == D("1000.00")
    assert all(b.payable_amount == b.original_amount - b.deduction_amount
               for b in DailyBill.objects.filter(sub_account=account))


def _posting_world(distributor, prefix: str):
    products("ecs", "oss", "rds")
    account = f.make_accounts(distributor, 1, prefix=prefix)[0]
    make_coupon(account, kind="discount", rate="10", cap="4.00", uses=5)
    make_coupon(account, amount="50.00", valid_until=date(2025, 6, 30))
    make_coupon(account, amount="70.00", products=["oss", "rds"])
    days = [DAY, date(2025, 5, 21), date(2025, 5, 22)]
    import_usage([(account, d, p, "33.30") for d in days for p in ("ecs", "oss", "rds")])
    for d in days:
        daily_bills_make(bill_date=d, enqueue_posting=False)
    return account


def test_the_same_posting_twice_at_once_leaves_one_set_of_rows(
    postgres_only, transactional_db, distributor,
):
    once = _posting_world(distributor, "ONCE-")
    for bill in DailyBill.objects.filter(sub_account=once).order_by("date"):
        bill_post_deductions(bill_id=bill.pk)
    expected = money_state(once)

    twice = _posting_world(distributor, "TWICE-")
    for bill in DailyBill.objects.filter(sub_account=twice).order_by("date"):
        _, _, errors = run_together(
            [lambda b=bill.pk: bill_post_deductions(bill_id=b)] * 2,
        )
        assert errors == []
    assert money_state(twice) == expected


def test_every_kind_of_posting_at_once_leaves_one_set_of_rows(
    postgres_only, transactional_db, distributor,
):
    """Per-bill tasks, per-account tasks and their redeliveries, all released together."""
    once = _posting_world(distributor, "SERIAL-")
    account_post_outstanding(sub_account_id=once.pk)
    expected = money_state(once)

    crowd = _posting_world(distributor, "CROWD-")
    bill_ids = list(DailyBill.objects.filter(sub_account=crowd).values_list("pk", flat=True))
    calls = [lambda: account_post_outstanding(sub_account_id=crowd.pk)] * 4
    calls += [lambda b=b: bill_post_deductions(bill_id=b) for b in bill_ids] * 2
    _, _, errors = run_together(calls)
    assert errors == []
    # Per-bill postings may win the race for a day, which only changes which day a coupon
    # paid first when bills arrive out of order; the money itself must be whole and once.
    state = money_state(crowd)
    assert len(state["deductions"]) == len(set((c, d, p) for c, d, p, _ in state["deductions"]))
    assert sum(b[2] for b in state["bills"]) == sum(b[2] for b in expected["bills"])
    assert [c[1] for c in state["coupons"]] == [c[1] for c in expected["coupons"]]
    # And another round of everything changes nothing.
    _, _, errors = run_together(calls)
    assert errors == [] and money_state(crowd) == state


@pytest.mark.parametrize("round_", range(3))  # the race is won by chance: three tries
def test_expiry_racing_postings_neither_deadlocks_nor_loses_money(
    postgres_only, transactional_db, distributor, round_,
):
    """Expiry runs while the accounts' postings run. Each account holds cash coupons that
    expire once its bills are posted (expiry must wait for the posting, or they would not
    pay), and two coupons already past their validity, which expiry takes at once while
    the posting holds them too (both must lock in pk order, or they deadlock). Every account
    ends as one posted first and expired after.

    Seen to fail without expiry's wait for unposted bills (in about one try of three); a
    reversed lock order in expiry did not deadlock in 5 runs (the window is one
    statement's row locking), so the pk order is held by review, not by this test."""

    def world(prefix: str):
        account = _posting_world(distributor, prefix)
        Coupon.objects.filter(sub_account=account, kind="cash").update(
            valid_until=date(2025, 5, 31),
        )
        for _ in range(2):
            make_coupon(account, amount="5.00", valid_from=date(2025, 5, 1),
                        valid_until=date(2025, 5, 10))
        return account

    serial = world("EXPS-")
    account_post_outstanding(sub_account_id=serial.pk)
    accounts = [world(f"EXP{i}-") for i in range(4)]
    calls = [lambda a=a: account_post_outstanding(sub_account_id=a.pk) for a in accounts]
    calls += [lambda: coupons_expire(today=date(2025, 6, 1), batch_size=3)] * 2
    _, _, errors = run_together(calls)
    assert errors == []
    coupons_expire(today=date(2025, 6, 1))  # what a racing run left for the next one
    expected = money_state(serial)
    assert {c[2] for c in expected["coupons"]} >= {"expired"}
    for account in accounts:
        assert money_state(account) == expected
