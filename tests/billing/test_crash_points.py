"""Crash points: a failure injected anywhere inside a posting leaves nothing half-posted, and
the rerun (the redelivered task) ends exactly where a run without the fault ends."""
from datetime import date, timedelta

import pytest

from billing import daily_bills, posting
from billing.models import DailyBill
from billing.posting import account_post_outstanding, bill_post_deductions
from tests import factories as f
from tests.billing.helpers import money_state, products
from tests.factories import import_usage, make_coupon

POINTS = ["locked", "deductions_inserted", "balances_updated", "lines_updated", "before_commit"]
DAYS = [date(2025, 4, 1) + timedelta(days=i) for i in range(3)]


class Crash(Exception):
    """The injected fault: stands for a worker dying or the database going away."""


def crash_at(monkeypatch, point: str) -> list[str]:
    reached = []

    def fault(name: str) -> None:
        reached.append(name)
        if name == point:
            raise Crash(name)

    monkeypatch.setattr(posting, "_fault", fault)
    return reached


@pytest.fixture
def twins(db, distributor):
    """Two accounts built alike: one posts with a fault, the other without."""
    products("ecs", "oss")
    faulty, clean = f.make_accounts(distributor, 2, prefix="CRASH-")
    for account in (faulty, clean):
        make_coupon(account, kind="discount", rate="10", cap="5.00", uses=2)
        make_coupon(account, amount="30.00", valid_until=date(2025, 6, 30))
        make_coupon(account, kind="threshold", amount="20.00", min_amount="50.00")
        make_coupon(account, amount="100.00", products=["oss"])
    import_usage([(a, d, p, amount) for a in (faulty, clean) for d in DAYS
                  for p, amount in (("ecs", "45.00"), ("oss", "60.00"))])
    for d in DAYS:
        daily_bills.daily_bills_make(bill_date=d, enqueue_posting=False)
    return faulty, clean


def post_bills(account):
    for bill_id in DailyBill.objects.filter(sub_account=account).order_by("date") \
            .values_list("pk", flat=True):
        bill_post_deductions(bill_id=bill_id)


def post_account(account):
    account_post_outstanding(sub_account_id=account.pk)


@pytest.mark.parametrize("post", [post_bills, post_account], ids=["per-bill", "per-account"])
@pytest.mark.parametrize("point", POINTS)
def test_a_crash_leaves_nothing_half_posted_and_the_rerun_equals_a_clean_run(
    twins, monkeypatch, point, post,
):
    faulty, clean = twins
    post(clean)
    before = money_state(faulty)
    reached = crash_at(monkeypatch, point)
    with pytest.raises(Crash):
        post(faulty)
    assert reached[-1] == point
    assert money_state(faulty) == before, f"half-posted after a crash at {point}"
    monkeypatch.undo()
    post(faulty)
    post(faulty)  # and a redelivery on top changes nothing
    assert money_state(faulty) == money_state(clean)
    assert money_state(clean)["deductions"], "the scenario must post something"
