"""Release and posting through a real `celery worker` process on Redis, end to end."""
import pytest
from django.conf import settings

from billing.daily_bills import daily_bills_make
from billing.models import DailyBill
from billing.tasks import daily_bills_make_task
from coupons.models import Coupon, IssuanceRequest
from tests.factories import make_shop
from tests.integration.helpers import (
    PAYS,
    USAGE,
    assert_ledger_clean,
    assert_posted_once,
    assert_released_once,
    eager,
    release_now,
    usage_for,
    yesterday,
)
from tests.integration.processes import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def deductions_logged(worker, task_name: str) -> int:
    """The deductions the worker's runs of a posting task made (each returns its count; a
    batch of bills or accounts is one run, however many a batch holds)."""
    return sum(int(value) for value in worker.results(task_name))


def test_a_large_release_runs_in_the_worker_and_pays_outstanding_bills(worker):
    """1,000 recipients (> RELEASE_INLINE_MAX): the approval commits, release_request runs in
    the worker, and the coupons_released follow-up (the accounts' postings, in batches) runs
    there too and pays the bills the accounts already had."""
    shop = make_shop(1000)
    day = yesterday()
    owing = shop.accounts[:100]
    usage_for(owing, day)
    with eager():
        daily_bills_make(bill_date=day)  # posted, nothing to pay with yet
    assert set(DailyBill.objects.values_list("payable_amount", flat=True)) == {PAYS + 20}
    request = shop.submit()
    assert request.recipient_count > settings.RELEASE_INLINE_MAX

    shop.approve(request)

    wait_for(lambda: IssuanceRequest.objects.get(pk=request.pk).status == "issued",
             timeout=60, what="the release", workers=[worker])
    wait_for(lambda: not DailyBill.objects.filter(deduction_amount=0).exists(),
             timeout=120, what="the postings of the outstanding bills", workers=[worker])
    assert_released_once(shop, request)
    assert_posted_once(owing, day)
    assert Coupon.objects.filter(status="available").count() == 900
    assert_ledger_clean()
    assert worker.succeeded("approvals.tasks.release_request") == 1
    wait_for(lambda: deductions_logged(worker, "billing.tasks.accounts_post_outstanding_batch_task")
             == len(owing) * len(USAGE), timeout=10,
             what="the worker to log the postings' deductions", workers=[worker])


def test_a_billing_run_makes_and_posts_every_bill_in_the_worker(worker):
    """The nightly run as beat sends it: daily_bills_make_task in the worker makes 300 bills
    and enqueues their postings (in batches), which the worker runs."""
    shop = make_shop(300)
    release_now(shop)
    day = yesterday()
    usage_for(shop.accounts, day)

    daily_bills_make_task.delay(day.isoformat())

    wait_for(lambda: DailyBill.objects.filter(date=day, posted_at__isnull=False).count() == 300,
             timeout=120, what="300 bills made and posted", workers=[worker])
    assert_posted_once(shop.accounts, day)
    assert_ledger_clean()
    wait_for(lambda: deductions_logged(worker, "billing.tasks.bills_post_task")
             == 300 * len(USAGE), timeout=10,
             what="the worker to log the postings' 600 deductions", workers=[worker])
    assert worker.succeeded("billing.tasks.daily_bills_make_task") == 1
