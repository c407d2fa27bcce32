"""Worker killed: SIGKILL in the middle of a large release and of a billing run.

The task is stopped at a chosen point inside its transaction by a row lock another
connection holds (HeldTransaction), so the kill always lands mid-way, however fast the
machine: halfway through the release's COPY of 5,000 coupons; after a batch posting inserted
its deductions and moved the coupon balances, before it updates the bill lines. Then a new
worker starts: with acks_late the message was never acknowledged, so Redis hands it out again
once the visibility timeout (a short one here, VISIBILITY_TIMEOUT) has passed, and the work
completes exactly once.
"""
import os
import signal
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from accounts.models import PlatformBudget
from billing.models import DailyBill, DailyBillLine, Deduction
from billing.tasks import daily_bills_make_task, daily_bills_post_pending_task
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from tests import factories as f
from tests.factories import SHOP_FACE_VALUE, make_shop
from tests.integration.conftest import QUEUE
from tests.integration.helpers import (
    HeldTransaction,
    assert_ledger_clean,
    assert_posted_once,
    assert_released_once,
    backend_gone,
    backend_waiting,
    release_now,
    usage_for,
    yesterday,
)
from tests.integration.processes import VISIBILITY_TIMEOUT, queue_drained, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def hold_release_at(shop, request, position: int) -> HeldTransaction:
    """Hold the release's COPY at the recipient in `position`: an uncommitted coupon of
    another request already claims that recipient, so the unique index makes the COPY wait
    (with the rows before it written) until this transaction ends. It references no row the
    release locks, so the release gets that far."""
    recipient = IssuanceRecipient.objects.filter(request=request).order_by("pk")[position]
    other = f.make_template(shop.partner, shop.admin, name="Hold", issue_limit="unlimited")
    dummy = IssuanceRequest.objects.create(
        partner=shop.partner, template=other, status=IssuanceRequest.Status.ISSUED,
        route=IssuanceRequest.Route.AUTO, cost_bearer="partner", currency="USD",
        unit_value=Decimal("1.00"), recipient_count=1, total_amount=Decimal("1.00"),
        submitted_by=shop.admin,
    )
    today = timezone.localdate()

    def claim():
        Coupon.objects.create(
            code="HOLD000000000001", template=other, request=dummy, recipient=recipient,
            partner=shop.partner, sub_account_id=recipient.sub_account_id, kind="cash",
            cost_bearer="partner", currency="USD", amount=Decimal("1.00"),
            balance=Decimal("1.00"), valid_from=today, valid_until=today + timedelta(days=1),
            released_at=timezone.now(),
        )

    return HeldTransaction(claim).start()


def assert_nothing_released(shop, request) -> None:
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.APPROVED
    assert not Coupon.objects.filter(request=request).exists()
    template = CouponTemplate.objects.get(pk=shop.template.pk)
    assert (template.released_count, template.released_amount) == (0, Decimal("0.00"))
    budget = PlatformBudget.objects.get(partner=shop.partner, currency="USD")
    assert (budget.reserved, budget.consumed) == (request.total_amount, Decimal("0.00"))


def test_worker_killed_halfway_through_a_release_of_5000_the_next_one_releases_once(
    on_redis, worker_factory,
):
    shop = make_shop(5000)
    request = shop.submit()
    hold = hold_release_at(shop, request, 2500)
    first = worker_factory(broker_url=on_redis, visibility_timeout=VISIBILITY_TIMEOUT)
    shop.approve(request)
    delivered = time.monotonic()
    pid = wait_for(lambda: backend_waiting('COPY "coupons_coupon"'), timeout=60,
                   what="the release to stop halfway through its COPY", workers=[first])

    first.kill()
    hold.release()
    wait_for(lambda: backend_gone(pid), timeout=30, what="the killed worker's transaction to end")
    assert_nothing_released(shop, request)

    second = worker_factory(broker_url=on_redis, visibility_timeout=VISIBILITY_TIMEOUT)
    wait_for(lambda: IssuanceRequest.objects.get(pk=request.pk).status == "issued",
             timeout=VISIBILITY_TIMEOUT + 90, what="the redelivered release", workers=[second])
    # Redis hands the unacknowledged message out again only after the visibility timeout.
    assert time.monotonic() - delivered >= VISIBILITY_TIMEOUT
    assert_released_once(shop, request)
    wait_for(lambda: second.succeeded("approvals.tasks.release_request") == 1, timeout=10,
             what="the second worker to log the release", workers=[second])
    assert_ledger_clean()


def test_pool_process_killed_mid_release_is_requeued_at_once(on_redis, worker_factory):
    """reject_on_worker_lost: when a pool process dies under a task, the worker hands the
    message back at once; no visibility timeout to wait for (this worker's is production's,
    an hour)."""
    shop = make_shop(1000)
    request = shop.submit()
    hold = hold_release_at(shop, request, 500)
    worker = worker_factory(broker_url=on_redis)
    shop.approve(request)
    pid = wait_for(lambda: backend_waiting('COPY "coupons_coupon"'), timeout=60,
                   what="the release to stop halfway through its COPY", workers=[worker])

    children = worker.child_pids()
    assert children, "no pool processes found"
    for child in children:
        os.kill(child, signal.SIGKILL)
    hold.release()
    wait_for(lambda: backend_gone(pid), timeout=30, what="the killed process's transaction to end")

    wait_for(lambda: IssuanceRequest.objects.get(pk=request.pk).status == "issued",
             timeout=60, what="the requeued release", workers=[worker])
    assert worker.alive
    assert_released_once(shop, request)
    assert "WorkerLostError" in worker.log_path.read_text()
    assert_ledger_clean()


def test_worker_killed_in_the_middle_of_a_billing_run_posts_every_bill_once(
    on_redis, worker_factory,
):
    """200 bills made and posted by the worker; the posting of the victim's bill (and of
    the others of its batch) is stopped after its deductions and coupon balances are
    written, before its bill lines; the worker dies there."""
    shop = make_shop(200)
    release_now(shop)
    day = yesterday()
    usage_for(shop.accounts, day)
    victim = shop.accounts[5]
    # 1. The victim's posting waits for its coupon lock until its bill exists...
    coupon_lock = HeldTransaction(
        lambda: list(Coupon.objects.select_for_update().filter(sub_account=victim)),
    ).start()
    first = worker_factory(broker_url=on_redis, visibility_timeout=VISIBILITY_TIMEOUT)
    daily_bills_make_task.delay(day.isoformat())
    wait_for(lambda: DailyBill.objects.filter(sub_account=victim, date=day).exists(),
             timeout=60, what="the victim's bill", workers=[first])
    # 2. ...then runs up to its last bill line, which another transaction holds. That lock
    # (FOR NO KEY UPDATE) lets the deductions' foreign-key checks through and stops only an
    # update of the line: the posting waiting for it has written deductions and balances.
    last_line = DailyBillLine.objects.filter(bill__sub_account=victim).order_by("pk").last()
    line_lock = HeldTransaction(
        lambda: list(DailyBillLine.objects.select_for_update(no_key=True).filter(pk=last_line.pk)),
    ).start()
    coupon_lock.release()
    pid = wait_for(lambda: backend_waiting(blocked_by=line_lock), timeout=60,
                   what="the victim's posting to stop before its lines", workers=[first])

    first.kill()
    line_lock.release()
    wait_for(lambda: backend_gone(pid), timeout=30, what="the killed worker's transaction to end")
    # Nothing half-posted: the victim's deductions and balance went with the transaction.
    assert not Deduction.objects.filter(sub_account=victim).exists()
    assert Coupon.objects.get(sub_account=victim).balance == SHOP_FACE_VALUE
    assert DailyBill.objects.get(sub_account=victim, date=day).posted_at is None

    second = worker_factory(broker_url=on_redis, visibility_timeout=VISIBILITY_TIMEOUT)
    # The victim's message was unacknowledged: Redis hands it out again.
    wait_for(lambda: DailyBill.objects.get(sub_account=victim, date=day).posted_at,
             timeout=VISIBILITY_TIMEOUT + 60, what="the victim's redelivered posting",
             workers=[second])
    wait_for(lambda: queue_drained(on_redis, QUEUE), timeout=120, what="the queue to drain",
             workers=[second])
    # A message the killed worker had just taken off the queue (BRPOP) but not yet recorded
    # as unacknowledged is gone for good: kombu's Redis transport has that window. The
    # sweeper finds its bill unposted; beat runs it every 15 minutes for bills older than 10.
    DailyBill.objects.filter(date=day).update(created_at=F("created_at") - timedelta(minutes=11))
    daily_bills_post_pending_task.delay()
    wait_for(lambda: second.succeeded("billing.tasks.daily_bills_post_pending_task"),
             timeout=60, what="the sweeper", workers=[second])
    wait_for(lambda: not DailyBill.objects.filter(date=day, posted_at__isnull=True).exists(),
             timeout=60, what="every bill posted", workers=[second])
    assert_posted_once(shop.accounts, day)
    assert_ledger_clean()
