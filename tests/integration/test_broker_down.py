"""Broker down: Redis stopped (or frozen) while a request is approved and while bills are made.

The web request and the bill run commit and answer; what they could not enqueue is found by
the sweepers once Redis is back (release_sweep: approved requests not released;
daily_bills_post_pending: bills not posted), run here through the worker as beat would run
them. The Redis server is the test's own, on a port of its own, without persistence: stopping
it loses every message it held, so nothing may depend on a message surviving.
"""
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connections
from django.db.models import F
from django.urls import reverse

from approvals.permissions import ensure_bd_group
from approvals.tasks import release_sweep
from billing.daily_bills import daily_bills_make
from billing.models import DailyBill
from billing.tasks import daily_bills_post_pending_task
from coupons.models import Coupon, IssuanceRequest
from tests.factories import make_shop
from tests.integration.conftest import QUEUE
from tests.integration.helpers import (
    assert_ledger_clean,
    assert_posted_once,
    assert_released_once,
    eager,
    release_now,
    usage_for,
    yesterday,
)
from tests.integration.processes import producing_to, queue_drained, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
# The web request and the bill run must answer within this while the broker is away:
# stopped (connections refused at once), or frozen (each socket waits for its timeout: the
# cache's 5 s, then the publish's 2 s and one retry's).
STOPPED_WITHIN = 5
FROZEN_WITHIN = 20


@pytest.fixture
def broker(private_redis, settings):
    """The test process publishes to the private Redis and keeps its cache there (another
    database on the same server, as settings derive it in production), with rate limits on
    as in production: when this Redis stops, the web's cache stops with it."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": private_redis.url.rsplit("/", 1)[0] + "/1",
    }}
    settings.RATELIMIT_ENABLED = True
    with producing_to(private_redis.url, QUEUE):
        yield private_redis


def settle(broker, worker) -> None:
    """Wait until the worker has run what is queued (the submit's mail to the BD) before the
    broker goes: a worker holding an unacknowledged task when Redis stops dies of kombu's
    "Unrecoverable error" on restoring it (an AttributeError in its Redis transport), and
    is started again by its supervisor (systemd's Restart=always, deploy/keep-running.sh
    under honcho; docs/DEPLOY.md). These tests are about the web and the sweepers."""
    wait_for(lambda: queue_drained(broker.url, QUEUE), timeout=60,
             what="the worker to run what was queued", workers=[worker])


def approve_in_admin(client, shop, request):
    """The BD presses Approve on the request's admin page; returns (response, seconds)."""
    ensure_bd_group()
    client.force_login(shop.bd)
    start = time.monotonic()
    response = client.post(
        reverse("admin:approvals_pendingrequest_approve", args=[request.pk]), follow=True,
    )
    return response, time.monotonic() - start


def sweep_releases(worker) -> None:
    """release_sweep as beat sends it, once the approval is older than its 2-minute grace."""
    IssuanceRequest.objects.filter(status="approved").update(
        decided_at=F("decided_at") - timedelta(minutes=3),
    )
    release_sweep.delay()


def test_approval_while_redis_is_stopped_commits_and_the_sweeper_releases_it(
    broker, worker_factory, client,
):
    shop = make_shop(1000)
    request = shop.submit()
    worker = worker_factory(broker_url=broker.url)
    settle(broker, worker)
    broker.stop()

    response, seconds = approve_in_admin(client, shop, request)

    print(f"approval with Redis stopped answered in {seconds:.1f}s")
    assert response.status_code == 200 and seconds < STOPPED_WITHIN, seconds
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Request {request.number} (#{request.pk}) approved; its coupons are being released.",
    ]
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.APPROVED
    assert not Coupon.objects.filter(request=request).exists()
    # The partner's request page and its progress poll answer too (progress is in the cache).
    client.force_login(shop.admin)
    for name in ("approvals:detail", "approvals:progress"):
        assert client.get(reverse(name, args=[request.pk])).status_code == 200, name

    broker.start()  # empty: whatever was queued before is gone
    sweep_releases(worker)
    wait_for(lambda: IssuanceRequest.objects.get(pk=request.pk).status == "issued",
             timeout=120, what="the sweeper's release", workers=[worker])
    assert_released_once(shop, request)
    # A second sweep (and the beat's next ones) change nothing.
    release_sweep.delay()
    wait_for(lambda: worker.succeeded("approvals.tasks.release_sweep") == 2, timeout=60,
             what="the second sweep", workers=[worker])
    assert_released_once(shop, request)
    assert_ledger_clean()


def test_bills_made_while_redis_is_stopped_are_posted_by_the_sweeper(broker, worker_factory):
    shop = make_shop(200)
    release_now(shop)
    day = yesterday()
    usage_for(shop.accounts, day)
    worker = worker_factory(broker_url=broker.url)
    settle(broker, worker)
    broker.stop()

    start = time.monotonic()
    call_command("run_billing", "--date", day.isoformat())
    seconds = time.monotonic() - start

    print(f"run_billing with Redis stopped returned in {seconds:.1f}s")
    assert seconds < STOPPED_WITHIN, seconds
    bills = DailyBill.objects.filter(date=day)
    assert bills.count() == 200 and not bills.filter(posted_at__isnull=False).exists()

    broker.start()
    # The sweeper leaves bills younger than 10 minutes to their own posting task.
    bills.update(created_at=F("created_at") - timedelta(minutes=11))
    daily_bills_post_pending_task.delay()
    wait_for(lambda: not bills.filter(posted_at__isnull=True).exists(), timeout=120,
             what="the sweeper's postings", workers=[worker])
    assert_posted_once(shop.accounts, day)
    daily_bills_post_pending_task.delay()
    wait_for(lambda: worker.succeeded("billing.tasks.daily_bills_post_pending_task") == 2,
             timeout=60, what="the second sweep", workers=[worker])
    assert_posted_once(shop.accounts, day)
    assert_ledger_clean()


def test_approval_while_redis_is_frozen_answers_and_the_sweeper_releases_it(
    broker, worker_factory, client,
):
    """SIGSTOP: connections stay open and nothing answers, as in a network partition or a
    hung server. The web request must still answer in bounded time."""
    shop = make_shop(1001)
    request = shop.submit(shop.accounts[:1000])
    worker = worker_factory(broker_url=broker.url)
    # The web process has talked to Redis before: its pooled connections are open.
    approve_in_admin(client, shop, shop.submit(shop.accounts[1000:]))
    settle(broker, worker)
    broker.freeze()
    outcome = {}

    def press():
        try:
            outcome["response"], outcome["seconds"] = approve_in_admin(client, shop, request)
        finally:
            connections.close_all()

    thread = threading.Thread(target=press, daemon=True)
    thread.start()
    thread.join(FROZEN_WITHIN * 3)
    hung = thread.is_alive()
    broker.thaw()
    thread.join(60)
    assert not hung, f"the approval did not answer within {FROZEN_WITHIN * 3}s"
    print(f"approval with Redis frozen answered in {outcome['seconds']:.1f}s")
    assert outcome["response"].status_code == 200
    assert outcome["seconds"] < FROZEN_WITHIN, outcome["seconds"]
    request.refresh_from_db()
    assert request.status in ("approved", "issued")

    sweep_releases(worker)
    wait_for(lambda: IssuanceRequest.objects.get(pk=request.pk).status == "issued",
             timeout=120, what="the release", workers=[worker])
    assert_released_once(shop, request)
    assert_ledger_clean()


def test_request_released_while_redis_is_stopped_pays_the_outstanding_bills_later(
    broker, worker_factory, client,
):
    """A small request is released inside the web request (≤ RELEASE_INLINE_MAX); its
    accounts already had posted, unpaid bills, which the new coupons should pay."""
    shop = make_shop(20)
    day = yesterday()
    usage_for(shop.accounts, day)
    with eager():
        daily_bills_make(bill_date=day)  # posted, nothing to pay with yet
    request = shop.submit()
    worker = worker_factory(broker_url=broker.url)
    settle(broker, worker)
    broker.stop()

    response, _ = approve_in_admin(client, shop, request)

    assert response.status_code == 200
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.ISSUED
    assert request.postings_pending  # the durable record that its postings are owed
    broker.start()
    sweep_releases(worker)
    DailyBill.objects.update(created_at=F("created_at") - timedelta(minutes=11))
    IssuanceRequest.objects.filter(pk=request.pk).update(
        issued_at=F("issued_at") - timedelta(minutes=11),
    )
    daily_bills_post_pending_task.delay()
    wait_for(lambda: worker.succeeded("billing.tasks.daily_bills_post_pending_task")
             and worker.succeeded("approvals.tasks.release_sweep")
             and queue_drained(broker.url, QUEUE),
             timeout=60, what="both sweeps", workers=[worker])
    assert_posted_once(shop.accounts, day)
