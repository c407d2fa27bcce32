"""Batched posting: many accounts' bills in one transaction give exactly what posting them
one at a time gives; a batch is all or nothing; overlapping batches at once neither
deadlock nor post twice; one bad item does not hold back the rest of its task."""
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import daily_bills, posting, tasks
from billing.models import DailyBill, Deduction
from couponplatform import dispatch
from couponplatform.exceptions import ApplicationError
from tests import factories as f
from tests.billing.helpers import money_state, products
from tests.billing.test_concurrency import run_together
from tests.billing.test_crash_points import POINTS, Crash, crash_at
from tests.factories import import_usage, make_coupon

DAYS = [date(2025, 4, 1) + timedelta(days=i) for i in range(3)]

# Each account's coupons: none, cash, discount, threshold, product-scoped, and mixes.
SHAPES = [
    [],
    [dict(amount="30.00")],
    [dict(kind="discount", rate="10", cap="5.00", uses=2)],
    [dict(kind="threshold", amount="20.00", min_amount="50.00")],
    [dict(amount="100.00", products=["oss"]), dict(amount="15.00", valid_until=date(2025, 4, 2))],
    [dict(kind="discount", rate="20", cap="9.00", uses=3), dict(amount="40.00"),
     dict(kind="threshold", amount="25.00", min_amount="100.00")],
    [dict(amount="0.01"), dict(amount="500.00", valid_from=date(2025, 4, 3))],
]


def _world(distributor, prefix: str) -> list:
    """One account per shape, with three days of usage billed and not posted."""
    products("ecs", "oss")
    accounts = f.make_accounts(distributor, len(SHAPES), prefix=prefix)
    for account, shape in zip(accounts, SHAPES, strict=True):
        for coupon in shape:
            make_coupon(account, **coupon)
    import_usage([(a, d, p, amount) for a in accounts for d in DAYS
                  for p, amount in (("ecs", "45.00"), ("oss", "60.10"))])
    for d in DAYS:
        daily_bills.daily_bills_make(bill_date=d, enqueue_posting=False)
    return accounts


def _bill_ids(accounts) -> list[int]:
    return list(DailyBill.objects.filter(sub_account__in=accounts).order_by("pk")
                .values_list("pk", flat=True))


def _states(accounts) -> list[dict]:
    return [money_state(a) for a in accounts]


@pytest.fixture
def pair(db, distributor):
    return _world(distributor, "ONE-"), _world(distributor, "MANY-")


def test_a_batch_of_bills_posts_what_posting_them_one_by_one_posts(pair):
    one, many = pair
    for account in one:
        for bill in DailyBill.objects.filter(sub_account=account).order_by("date"):
            posting.bill_post_deductions(bill_id=bill.pk)
    result = posting.bills_post(bill_ids=_bill_ids(many))
    assert _states(many) == _states(one)
    assert result.bills == len(SHAPES) * len(DAYS)
    assert result.deductions == Deduction.objects.filter(sub_account__in=many).count() > 10


def test_a_batch_of_accounts_posts_what_posting_each_account_posts(pair):
    one, many = pair
    for account in one:
        posting.account_post_outstanding(sub_account_id=account.pk)
    posting.accounts_post_outstanding(sub_account_ids=[a.pk for a in reversed(many)])
    assert _states(many) == _states(one)


def test_a_batch_run_again_changes_nothing(pair):
    _, many = pair
    posting.bills_post(bill_ids=_bill_ids(many))
    state = _states(many)
    again = posting.bills_post(bill_ids=_bill_ids(many))
    posting.accounts_post_outstanding(sub_account_ids=[a.pk for a in many])
    assert again.deductions == 0
    assert _states(many) == state


def test_a_batch_of_missing_bills_posts_nothing(db):
    assert posting.bills_post(bill_ids=[987654, 987655]).bills == 0


def test_the_batch_writes_in_a_fixed_number_of_statements(db, distributor):
    """Set-based: a batch of 3 accounts and one of 7 run the same number of queries."""
    counts = []
    for n, prefix in ((3, "Q3-"), (7, "Q7-")):
        accounts = _world(distributor, prefix)[:n]
        with CaptureQueriesContext(connection) as queries:
            posting.bills_post(bill_ids=_bill_ids(accounts))
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_inside_a_batch_leaves_every_account_of_it_untouched(pair, monkeypatch, point):
    one, many = pair
    posting.bills_post(bill_ids=_bill_ids(one))
    before = _states(many)
    reached = crash_at(monkeypatch, point)
    with pytest.raises(Crash):
        posting.bills_post(bill_ids=_bill_ids(many))
    assert reached[-1] == point
    assert _states(many) == before, f"half-posted after a crash at {point}"
    monkeypatch.undo()
    posting.bills_post(bill_ids=_bill_ids(many))
    assert _states(many) == _states(one)


def test_enqueueing_publishes_one_task_per_batch(db, monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "enqueue", lambda name, ids: sent.append(ids))
    posting.bills_enqueue_posting(bill_ids=range(1, posting.POST_BATCH * 2 + 2))
    assert [len(batch) for batch in sent] == [posting.POST_BATCH, posting.POST_BATCH, 1]
    sent.clear()
    posting.accounts_enqueue_posting(sub_account_ids=[5, 3, 3, 1])
    assert sent == [[1, 3, 5]]


def test_one_bad_bill_does_not_hold_back_the_rest_of_its_task(pair, monkeypatch):
    one, many = pair
    posting.bills_post(bill_ids=_bill_ids(one))
    bad_account = many[1]
    bad_bill = DailyBill.objects.filter(sub_account=bad_account).order_by("pk").first()
    real = posting._post

    def failing(*, bills_of, outstanding_of):
        if bad_bill.pk in bills_of.get(bad_account.pk, ()):
            raise ValueError("a broken row")
        return real(bills_of=bills_of, outstanding_of=outstanding_of)

    monkeypatch.setattr(posting, "_post", failing)
    with pytest.raises(ApplicationError, match=rf"1 daily bill\(s\): {bad_bill.pk};"):
        tasks.bills_post_task.run(_bill_ids(many))
    others = [a for a in many if a != bad_account]
    assert _states(others) == _states([a for a in one if a != one[1]])
    assert not DailyBill.objects.get(pk=bad_bill.pk).posted_at


@pytest.mark.race
def test_overlapping_batches_at_once_neither_deadlock_nor_post_twice(
    postgres_only, transactional_db, distributor,
):
    """Eight batches over the same accounts, listed in different orders, per bill and per
    account, released together: no deadlock, no error, and what one serial run posts."""
    serial = _world(distributor, "SER-")
    posting.accounts_post_outstanding(sub_account_ids=[a.pk for a in serial])
    expected = _states(serial)

    crowd = _world(distributor, "CRW-")
    bills = _bill_ids(crowd)
    account_ids = [a.pk for a in crowd]
    calls = [
        lambda: posting.bills_post(bill_ids=bills),
        lambda: posting.bills_post(bill_ids=list(reversed(bills))),
        lambda: posting.bills_post(bill_ids=bills[::2]),
        lambda: posting.bills_post(bill_ids=bills[1::2]),
        lambda: posting.accounts_post_outstanding(sub_account_ids=account_ids),
        lambda: posting.accounts_post_outstanding(sub_account_ids=account_ids[::-1]),
        lambda: posting.accounts_post_outstanding(sub_account_ids=account_ids[:4]),
        lambda: posting.accounts_post_outstanding(sub_account_ids=account_ids[3:]),
    ]
    _, _, errors = run_together(calls)
    assert errors == [], errors[:3]
    state = _states(crowd)
    # Which batch wins a day may change which day a coupon paid first; the money is whole.
    for got, want in zip(state, expected, strict=True):
        assert len(got["deductions"]) == len({(c, d, p) for c, d, p, _ in got["deductions"]})
        assert sum(b[2] for b in got["bills"]) == sum(b[2] for b in want["bills"])
        assert [c[1] for c in got["coupons"]] == [c[1] for c in want["coupons"]]
    _, _, errors = run_together(calls)
    assert errors == [] and _states(crowd) == state
