"""Webhooks (QUALITY "API": webhooks; docs/API.md): deliveries to a real HTTP receiver on
127.0.0.1 that fails, times out and then accepts; signatures that verify; retries that
back off; the outbox written in the change's own transaction; nothing lost when a worker
dies mid-delivery or a message is lost; private addresses refused in production, at
registration and at delivery; endpoints and logs per tenant; bad input refused, writing
nothing.

No test waits for a retry: the clock is moved to each delivery's next attempt
(time-machine) and the sweeper or the task is called directly. The receiver is
`http://127.0.0.1`, which only WEBHOOK_ALLOW_LOCAL (set here as the test setting) allows;
the production checks run with it off. Host names are answered by a fake resolver, so no
test asks a real DNS server.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.urls import reverse

from api import secret_box
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.webhooks import (
    BACKOFF_CAP,
    EVENT_TYPES,
    LEASE,
    REQUEUE_AFTER,
    backoff,
    webhook_deliver,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_sweep,
)
from approvals import services as approvals
from audit.models import AuditLog
from billing.coupon_status import coupon_void, coupons_void
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from coupons.models import Coupon, IssuanceRequest
from tests import factories as f

pytestmark = pytest.mark.django_db

Pending = WebhookDelivery.Status.PENDING
PUBLIC_IP = "93.184.215.14"
_real_getaddrinfo = socket.getaddrinfo


# ---------------------------------------------------------------------------------------
# A real receiver, a fake resolver


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread that answers each POST by its script:
    a status code, or ("slow", seconds, code) to answer after the client's timeout."""

    def __init__(self, script=()):
        self.script = list(script)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = receiver.script.pop(0) if receiver.script else 200
                seen = {"headers": dict(self.headers), "body": body, "path": self.path,
                        "answered": None}
                receiver.received.append(seen)
                if isinstance(action, tuple):
                    time.sleep(action[1])
                    action = action[2]
                try:
                    self.send_response(action)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    seen["answered"] = action
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/coupon-events"

    def event_ids(self) -> list[str]:
        return [json.loads(r["body"])["id"] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*script):
        made.append(Receiver(script))
        return made[-1]

    yield make
    for r in made:
        r.close()


DNS: dict[str, list[str]] = {}


def _fake_getaddrinfo(host, port, *args, **kwargs):
    """IP literals as the system answers them (no lookup is made for those); names from
    DNS above only, so a test never asks a real resolver."""
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in DNS[host]]
    return _real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture(autouse=True)
def local_allowed(settings):
    """The test setting: the receiver is http://127.0.0.1; a short client timeout."""
    settings.WEBHOOK_ALLOW_LOCAL = True
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.WEBHOOK_RETRY_HOURS = 24
    DNS.clear()
    DNS.update({"localhost": ["127.0.0.1"], "hooks.partner.example": [PUBLIC_IP]})
    with mock.patch("socket.getaddrinfo", _fake_getaddrinfo):
        yield settings


@pytest.fixture
def production(local_allowed):
    local_allowed.WEBHOOK_ALLOW_LOCAL = False
    return local_allowed


@pytest.fixture
def shop(db):
    return f.make_shop(8, prefix="WH-", admin="wh-admin", operator="wh-operator")


def register(shop, url, events=("request.cancelled",), **kwargs):
    return webhook_endpoint_create(partner=shop.partner, acting_user=shop.admin, url=url,
                                   events=list(events), **kwargs)


def verifies(seen: dict, secret: str) -> bool:
    """A receiver's check of Coupon-Signature, as docs/API.md shows it."""
    parts = dict(p.split("=", 1) for p in seen["headers"]["Coupon-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + seen["body"],
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def cancel_one(shop, accounts=None) -> IssuanceRequest:
    request = f.submit(shop.template, shop.admin, accounts or shop.accounts[:1])
    with f.committed():
        approvals.issuance_request_cancel(request_id=request.pk, acting_user=shop.admin)
    return request


def sweep_at(moment: datetime) -> int:
    """The sweeper as beat runs it at `moment`; what it queues runs (eagerly) on commit."""
    with time_machine.travel(moment, tick=True), f.committed():
        return webhook_sweep()


# ---------------------------------------------------------------------------------------
# Delivery, retries, signature


def test_a_failing_then_slow_receiver_gets_the_event_once_accepted_with_growing_pauses(
        postgres_only, shop, receiver):
    hook = receiver(500, 500, ("slow", 1.5, 503), 200)
    endpoint, secret = register(shop, hook.url)
    cancel_one(shop)  # the first attempt runs as the cancel commits

    delivery = WebhookDelivery.objects.get()
    seen_by_platform = [(delivery.attempts, delivery.last_status_code, delivery.last_error)]
    attempted_at = [delivery.last_attempt_at]
    while delivery.status == Pending:
        assert delivery.locked_until is None
        # Not before its time: a sweep a second early queues nothing.
        assert sweep_at(delivery.next_attempt_at - timedelta(seconds=1)) == 0
        assert sweep_at(delivery.next_attempt_at + timedelta(milliseconds=10)) == 1
        delivery.refresh_from_db()
        seen_by_platform.append((delivery.attempts, delivery.last_status_code,
                                 delivery.last_error))
        attempted_at.append(delivery.last_attempt_at)

    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert [(a, code) for a, code, _e in seen_by_platform] == [
        (1, 500), (2, 500), (3, None), (4, 200)]
    assert "timed out" in seen_by_platform[2][2]
    # The receiver saw four POSTs of one event, byte for byte, and accepted one.
    assert len(hook.received) == 4
    assert len({r["body"] for r in hook.received}) == 1
    assert set(hook.event_ids()) == {delivery.event.public_id}
    assert [r["answered"] for r in hook.received if r["answered"] == 200] == [200]
    assert all(verifies(r, secret) for r in hook.received)
    assert not verifies(hook.received[0], secret + "x")
    # Each pause is longer than the one before (30 s, 60 s, 120 s, less up to 20 % jitter).
    pauses = [(b - a).total_seconds() for a, b in zip(attempted_at, attempted_at[1:],
                                                           strict=False)]
    assert 24 <= pauses[0] < pauses[1] < pauses[2], pauses
    # Delivered: no sweep sends it again.
    assert sweep_at(delivery.last_attempt_at + timedelta(days=2)) == 0
    assert len(hook.received) == 4


def test_the_body_and_signature_are_what_the_guide_says(postgres_only, shop, receiver):
    hook = receiver(200)
    _endpoint, secret = register(shop, hook.url)
    request = cancel_one(shop)
    seen = hook.received[0]
    body = json.loads(seen["body"])
    assert set(body) == {"id", "object", "type", "created", "data"}
    assert body["id"].startswith("evt_") and body["object"] == "event"
    assert body["type"] == "request.cancelled"
    assert datetime.fromisoformat(body["created"]).utcoffset() is not None
    obj = body["data"]["object"]
    assert (obj["object"], obj["id"], obj["status"]) == ("issuance_request", request.pk,
                                                          "cancelled")
    assert (obj["total_amount"], obj["unit_value"], obj["currency"]) == ("50.00", "50.00",
                                                                        "USD")
    assert body["data"]["previous_status"] == "pending"
    t = dict(p.split("=", 1) for p in seen["headers"]["Coupon-Signature"].split(","))["t"]
    assert abs(int(t) - time.time()) < 60
    assert seen["headers"]["Content-Type"].startswith("application/json")
    assert seen["headers"]["Coupon-Event-Id"] == body["id"]
    assert verifies(seen, secret)


def test_every_event_type_is_sent_with_its_object(postgres_only, shop, receiver):
    hook = receiver()
    register(shop, hook.url, events=list(EVENT_TYPES))
    a = shop.accounts
    issued = f.approve(f.submitted(shop.template, shop.admin, a[0:3]), shop.bd)
    f.reject(f.submitted(shop.template, shop.admin, a[3:4]), shop.bd)
    f.cancel(f.submitted(shop.template, shop.admin, a[4:5]), shop.admin)
    coupons = list(Coupon.objects.filter(request=issued).order_by("pk"))
    with f.committed():
        coupon_void(coupon=coupons[0], acting_user=shop.admin, reason="Sent by mistake")
    with f.committed():
        coupons_void(partner=shop.partner, codes=[coupons[1].code], acting_user=shop.admin,
                     reason="Batch")
    f.approve_and_fail(f.submitted(shop.template, shop.admin, a[5:6]), shop.bd, shop.admin)

    bodies = [json.loads(r["body"]) for r in hook.received]
    assert [b["type"] for b in bodies] == [
        "request.approved", "request.issued", "request.rejected", "request.cancelled",
        "coupon.voided", "coupon.voided", "request.approved", "request.failed_to_issue"]
    issued_body = bodies[1]["data"]
    assert (issued_body["object"]["status"], issued_body["previous_status"]) == ("issued",
                                                                                 "approved")
    assert issued_body["object"]["total_amount"] == "150.00"
    assert issued_body["object"]["released_count"] == 3
    voided = bodies[4]["data"]["object"]
    assert (voided["object"], voided["code"], voided["status"]) == ("coupon", coupons[0].code,
                                                                    "voided")
    assert (voided["amount"], voided["balance"], voided["voided_amount"],
            voided["currency"]) == ("50.00", "0.00", "50.00", "USD")
    assert bodies[5]["data"]["object"]["code"] == coupons[1].code
    assert bodies[7]["data"]["object"]["reason"]  # why it failed to issue
    assert len({b["id"] for b in bodies}) == len(bodies)
    assert WebhookDelivery.objects.filter(status="succeeded").count() == len(bodies)


def test_console_admin_and_api_changes_all_write_their_event(postgres_only, shop, receiver):
    """The events come from the one mover of each status, whoever calls it: the console's
    cancel, the BD admin's approve, the API's cancel."""
    from tests.api.helpers import Api, make_key

    hook = receiver()
    register(shop, hook.url, events=list(EVENT_TYPES))
    a = shop.accounts
    by_console, by_admin, by_api = (f.submitted(shop.template, shop.admin, a[i:i + 1])
                                    for i in range(3))
    console, bd = signed_in(shop.admin), signed_in(shop.bd)
    with f.committed():
        console.post(reverse("approvals:cancel", args=[by_console.pk]))
    with f.committed():
        bd.post(reverse("admin:approvals_pendingrequest_approve", args=[by_admin.pk]))
    with f.committed():
        answer = Api(make_key(shop.partner, shop.admin)[1]).post(
            f"/issuance_requests/{by_api.pk}/cancel")
    assert answer.status_code == 200, answer.content
    seen = [(b["type"], b["data"]["object"]["id"]) for b in map(
        json.loads, (r["body"] for r in hook.received))]
    assert seen == [("request.cancelled", by_console.pk), ("request.approved", by_admin.pk),
                    ("request.issued", by_admin.pk), ("request.cancelled", by_api.pk)]


def test_only_subscribed_active_endpoints_get_a_delivery(postgres_only, shop, receiver):
    cancels, approvals_only, disabled = receiver(), receiver(), receiver()
    register(shop, cancels.url)
    register(shop, approvals_only.url, events=["request.approved"])
    off, _ = register(shop, disabled.url)
    webhook_endpoint_disable(endpoint=off, acting_user=shop.admin)
    cancel_one(shop)
    assert WebhookEvent.objects.count() == 1
    assert list(WebhookDelivery.objects.values_list("endpoint__url", flat=True)) == [cancels.url]
    assert len(cancels.received) == 1 and not approvals_only.received and not disabled.received


def test_retries_end_after_the_window_as_failed(postgres_only, shop, receiver):
    hook = receiver(*([503] * 60))
    register(shop, hook.url)
    cancel_one(shop)
    delivery = WebhookDelivery.objects.get()
    window_end = delivery.give_up_at
    assert window_end - delivery.created_at == timedelta(hours=24)
    while delivery.status == Pending:
        sweep_at(delivery.next_attempt_at + timedelta(milliseconds=10))
        delivery.refresh_from_db()
        assert delivery.next_attempt_at is None or delivery.next_attempt_at <= window_end
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.last_attempt_at >= window_end
    assert delivery.last_status_code == 503
    # The pauses grow to the cap and stay there: about 35 attempts in 24 hours.
    assert 28 <= delivery.attempts == len(hook.received) <= 42
    assert backoff(1) <= timedelta(seconds=30) and backoff(50) <= BACKOFF_CAP
    assert backoff(50) >= BACKOFF_CAP * 0.8


# ---------------------------------------------------------------------------------------
# The outbox: in the change's transaction


def test_a_rolled_back_change_leaves_no_event_and_sends_nothing(postgres_only, shop, receiver):
    hook = receiver()
    register(shop, hook.url)
    request = f.submit(shop.template, shop.admin, shop.accounts[:1])
    with f.deferred() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            approvals.issuance_request_cancel(request_id=request.pk, acting_user=shop.admin)
            # Inside the transaction the event and its delivery are there, unsent...
            assert WebhookEvent.objects.filter(type="request.cancelled").count() == 1
            assert WebhookDelivery.objects.count() == 1
            raise RuntimeError("something after the cancel fails: all of it rolls back")
    f.run_callbacks(list(callbacks))
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.PENDING
    # ... and with the change rolled back, neither is, and nothing was sent.
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()
    assert hook.received == []


def test_an_outbox_that_can_not_be_written_rolls_the_change_back(postgres_only, shop, receiver):
    register(shop, receiver().url)
    request = f.submit(shop.template, shop.admin, shop.accounts[:1])
    with mock.patch("api.receivers.webhook_events_record", side_effect=RuntimeError("disk")), \
            pytest.raises(RuntimeError):
        approvals.issuance_request_cancel(request_id=request.pk, acting_user=shop.admin)
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.PENDING


def test_a_partner_without_endpoints_gets_no_outbox_rows(postgres_only, shop):
    cancel_one(shop)
    assert not WebhookEvent.objects.exists()


# ---------------------------------------------------------------------------------------
# Nothing lost


class WorkerKilled(BaseException):
    """The worker process dies: nothing after this point of the task runs."""


def test_a_worker_killed_mid_delivery_loses_nothing(postgres_only, shop, receiver):
    hook = receiver(200, 200)
    _endpoint, secret = register(shop, hook.url)
    request = f.submit(shop.template, shop.admin, shop.accounts[:1])
    with f.deferred():  # the first task's message is the one the dying worker took
        approvals.issuance_request_cancel(request_id=request.pk, acting_user=shop.admin)
    delivery = WebhookDelivery.objects.get()

    # The worker claims the delivery, POSTs it (the receiver accepts), and dies before it
    # records the answer.
    with mock.patch("api.webhooks._record", side_effect=WorkerKilled), \
            pytest.raises(WorkerKilled):
        webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Pending, 1)
    assert delivery.locked_until is not None and len(hook.received) == 1

    # While its lease runs, no one else sends it; once it ran out, the sweeper does.
    assert sweep_at(delivery.locked_until - timedelta(seconds=1)) == 0
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert sweep_at(delivery.locked_until + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.SUCCEEDED, 2)
    # The receiver saw the same event twice and de-duplicates on its id.
    assert hook.event_ids() == [delivery.event.public_id] * 2
    assert all(verifies(r, secret) for r in hook.received)
    assert LEASE < REQUEUE_AFTER


def test_a_lost_message_is_sent_by_the_sweeper(postgres_only, shop, receiver):
    hook = receiver()
    register(shop, hook.url)
    request = f.submit(shop.template, shop.admin, shop.accounts[:1])
    with f.deferred():  # the broker lost the message published on commit
        approvals.issuance_request_cancel(request_id=request.pk, acting_user=shop.admin)
    delivery = WebhookDelivery.objects.get()
    # Queued moments ago: the sweeper leaves it to its message for a while ...
    assert sweep_at(delivery.created_at + timedelta(minutes=1)) == 0
    assert hook.received == []
    # ... then takes it for lost.
    assert sweep_at(delivery.created_at + REQUEUE_AFTER + timedelta(seconds=1)) == 1
    assert hook.event_ids() == [delivery.event.public_id]
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


# ---------------------------------------------------------------------------------------
# Addresses


@pytest.mark.parametrize(("url", "says"), [
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://localhost/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10:8443/hooks", "private"),
    ("https://100.64.0.1/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fe80::1]/hooks", "link-local"),
    ("https://mixed.partner.example/hooks", "private"),
    ("https://nowhere.partner.example/hooks", "could not be resolved"),
])
def test_production_refuses_private_addresses_at_registration(production, shop, url, says):
    DNS["mixed.partner.example"] = [PUBLIC_IP, "10.0.0.7"]
    audit = AuditLog.objects.count()
    with pytest.raises(ApplicationError) as refused:
        register(shop, url)
    assert says in refused.value.extra["errors"]["url"]
    assert not WebhookEndpoint.objects.exists() and AuditLog.objects.count() == audit


def test_production_registers_a_public_https_endpoint(production, shop):
    endpoint, secret = register(shop, "https://hooks.partner.example/coupons?x=1")
    assert endpoint.url == "https://hooks.partner.example/coupons?x=1"
    assert secret.startswith("whsec_") and secret not in endpoint.secret_box
    assert secret_box.unseal(endpoint.secret_box) == secret
    assert AuditLog.objects.filter(action="webhook_endpoint.create", object_id=str(endpoint.pk),
                                   partner=shop.partner).count() == 1


def test_production_refuses_at_delivery_a_name_that_now_resolves_inward(
        postgres_only, production, shop, receiver):
    """Registered while its name was public; by the delivery it points at the platform's
    own loopback (DNS rebinding), where a receiver listens: nothing reaches it."""
    hook = receiver()
    register(shop, f"https://hooks.partner.example:{hook.port}/coupon-events")
    DNS["hooks.partner.example"] = [PUBLIC_IP, "127.0.0.1"]
    cancel_one(shop)
    delivery = WebhookDelivery.objects.get()
    assert hook.received == []
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Pending, 1, None)
    assert "resolves to 127.0.0.1, a loopback address" in delivery.last_error
    assert delivery.next_attempt_at > delivery.last_attempt_at  # tried again later


def test_the_connection_goes_to_the_address_that_was_checked(postgres_only, shop, receiver):
    """The name is resolved once and checked; the POST connects to that address and still
    names the host (Host header), it does not resolve the name a second time."""
    hook = receiver()
    DNS["receiver.partner.example"] = ["127.0.0.1"]
    register(shop, f"http://receiver.partner.example:{hook.port}/in")
    lookups = []

    def counting(host, *args, **kwargs):
        lookups.append(host)
        return _fake_getaddrinfo(host, *args, **kwargs)

    with mock.patch("socket.getaddrinfo", counting):
        cancel_one(shop)
    assert hook.received[0]["headers"]["Host"] == f"receiver.partner.example:{hook.port}"
    assert lookups.count("receiver.partner.example") == 1


# ---------------------------------------------------------------------------------------
# The console: bad input, the secret once, tenants, redeliver


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.mark.parametrize(("data", "says"), [
    ({"url": "http://hooks.partner.example/x", "events": ["request.issued"]}, "https://"),
    ({"url": "hooks.partner.example/x", "events": ["request.issued"]}, "https://"),
    ({"url": "https://", "events": ["request.issued"]}, "no host name"),
    ({"url": "https://hooks partner.example/", "events": ["request.issued"]}, "no spaces"),
    ({"url": "https://bad_host!.example/", "events": ["request.issued"]},
     "not a valid host name"),
    ({"url": "https://hooks.partner.example:99999/", "events": ["request.issued"]},
     "not a valid URL"),
    ({"url": "https://me:pw@hooks.partner.example/", "events": ["request.issued"]},
     "user name or password"),
    ({"url": "https://hooks.partner.example/x", "events": []}, "at least one event"),
    ({"url": "https://hooks.partner.example/x", "events": ["request.nope"]},
     "Select a valid choice"),
    ({"url": "", "events": ["request.issued"]}, "This field is required"),
    ({"url": "https://hooks.partner.example/" + "x" * 2000, "events": ["request.issued"]},
     "at most 2000 characters"),
])
def test_bad_input_gets_a_clear_message_and_writes_nothing(production, shop, data, says):
    audit = AuditLog.objects.count()
    response = signed_in(shop.admin).post(reverse("webhooks"), data)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert "whsec_" not in response.content.decode()
    assert not WebhookEndpoint.objects.exists() and AuditLog.objects.count() == audit


def test_the_console_shows_the_secret_once(production, shop):
    client = signed_in(shop.admin)
    response = client.post(reverse("webhooks"), {
        "url": "https://hooks.partner.example/in", "events": ["request.issued", "coupon.voided"],
        "description": "CRM"})
    endpoint = WebhookEndpoint.objects.get()
    secret = secret_box.unseal(endpoint.secret_box)
    assert secret in response.content.decode()
    assert endpoint.events == ["request.issued", "coupon.voided"]
    again = client.get(reverse("webhooks")).content.decode()
    assert "https://hooks.partner.example/in" in again and secret not in again


def test_only_a_partner_admin_manages_endpoints(production, shop):
    assert signed_in(shop.operator).get(reverse("webhooks")).status_code == 403
    with pytest.raises(PermissionDeniedError):
        webhook_endpoint_create(partner=shop.partner, acting_user=shop.operator,
                                url="https://hooks.partner.example/", events=["request.issued"])
    assert not WebhookEndpoint.objects.exists()


def test_endpoints_and_logs_are_the_partners_own(postgres_only, shop, receiver):
    hook = receiver(500)
    endpoint, _ = register(shop, hook.url)
    cancel_one(shop)
    delivery = WebhookDelivery.objects.get()
    other = f.make_shop(1, prefix="WO-", admin="wh-other-admin")
    theirs, _ = register(other, "http://127.0.0.1:9/theirs")
    client = signed_in(other.admin)

    listing = client.get(reverse("webhooks")).content.decode()
    assert f"/coupons/webhooks/{theirs.pk}/" in listing and hook.url not in listing
    assert client.get(reverse("webhook_detail", args=[endpoint.pk])).status_code == 404
    assert client.post(reverse("webhook_disable", args=[endpoint.pk])).status_code == 404
    before = WebhookDelivery.objects.values().get(pk=delivery.pk)
    with f.committed():
        answer = client.post(reverse("webhook_redeliver", args=[delivery.pk]))
    assert answer.status_code == 404
    assert WebhookDelivery.objects.values().get(pk=delivery.pk) == before
    endpoint.refresh_from_db()
    assert endpoint.active and len(hook.received) == 1
    # Their own log shows none of ours.
    log = client.get(reverse("webhook_detail", args=[theirs.pk])).content.decode()
    assert delivery.event.public_id not in log


def test_the_task_rechecks_the_tenant(postgres_only, shop, receiver):
    hook = receiver()
    register(shop, hook.url)
    other = f.make_shop(1, prefix="WO-", admin="wh-other-admin")
    foreign = WebhookEvent.objects.create(public_id="evt_foreign", partner=other.partner,
                                          type="request.cancelled", body="{}")
    delivery = WebhookDelivery.objects.create(
        event=foreign, endpoint=WebhookEndpoint.objects.get(), next_attempt_at=foreign.created_at,
        give_up_at=foreign.created_at + timedelta(hours=24))
    assert webhook_deliver(delivery_id=delivery.pk) == WebhookDelivery.Status.FAILED
    assert hook.received == []


def test_redeliver_sends_the_same_event_again_with_csrf_and_an_audit_row(
        postgres_only, shop, receiver):
    hook = receiver(200, 200)
    endpoint, secret = register(shop, hook.url)
    cancel_one(shop)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    client = signed_in(shop.admin, enforce_csrf_checks=True)
    url = reverse("webhook_redeliver", args=[delivery.pk])

    assert client.post(url).status_code == 403  # no CSRF token
    assert len(hook.received) == 1
    page = client.get(reverse("webhook_detail", args=[endpoint.pk]))
    assert delivery.event.public_id in page.content.decode()
    token = page.cookies["csrftoken"].value
    with f.committed():
        answer = client.post(url, {"csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert hook.event_ids() == [delivery.event.public_id] * 2
    assert hook.received[0]["body"] == hook.received[1]["body"]
    assert all(verifies(r, secret) for r in hook.received)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.SUCCEEDED, 2)
    row = AuditLog.objects.get(action="webhook_delivery.redeliver")
    assert (row.actor_id, row.partner_id, row.object_id) == (shop.admin.pk, shop.partner.pk,
                                                            str(delivery.pk))


# ---------------------------------------------------------------------------------------
# The sealed secret


def test_the_secret_box_opens_only_with_the_key_it_was_sealed_with(settings):
    box = secret_box.seal("whsec_abc")
    assert "whsec_abc" not in box and secret_box.unseal(box) == "whsec_abc"
    assert secret_box.seal("whsec_abc") != box  # a fresh nonce each time
    tampered = box[:-6] + ("A" if box[-6] != "A" else "B") + box[-5:]
    with pytest.raises(secret_box.SecretBoxError):
        secret_box.unseal(tampered)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(secret_box.SecretBoxError):
        secret_box.unseal(box)
    settings.SECRET_KEY_FALLBACKS = [old]  # rotated the Django way: still opens
    assert secret_box.unseal(box) == "whsec_abc"
