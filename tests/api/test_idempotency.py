"""Idempotency-Key (QUALITY.md API "idempotency"): the same POST twice, 16 at once on their
own PostgreSQL connections, and once with another body; exactly one request is made."""
import json
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from api.idempotency import idempotency_purge
from api.models import IdempotencyRecord
from coupons.models import CouponTemplate, IssuanceRequest
from tests import factories as f
from tests.api.helpers import error_of, make_key
from tests.api.test_keys import TEMPLATE


def test_the_same_post_twice_makes_one_template_and_replays_the_first_answer(shop, api):
    first = api.post("/templates", TEMPLATE, **{"Idempotency-Key": "k-1"})
    second = api.post("/templates", TEMPLATE, **{"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert second.json() == first.json()
    assert CouponTemplate.objects.filter(name=TEMPLATE["name"]).count() == 1
    # Another partner's same key is its own.
    rival = f.make_shop(0, template=False)
    from tests.api.helpers import Api

    other = Api(make_key(rival.partner, rival.admin)[1]).post(
        "/templates", TEMPLATE, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 201 and "Idempotent-Replayed" not in other


def test_a_refusal_is_kept_and_replayed_too(shop, api):
    body = {**TEMPLATE, "face_value": "-1"}
    first = api.post("/templates", body, **{"Idempotency-Key": "bad"})
    again = api.post("/templates", body, **{"Idempotency-Key": "bad"})
    assert first.status_code == again.status_code == 422
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()


def test_the_same_key_with_another_body_is_422_mismatch(shop, api):
    assert api.post("/templates", TEMPLATE, **{"Idempotency-Key": "k-2"}).status_code == 201
    other = api.post("/templates", {**TEMPLATE, "name": "Other"}, **{"Idempotency-Key": "k-2"})
    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_key_mismatch"
    assert not CouponTemplate.objects.filter(name="Other").exists()
    # Spacing and key order are the same request.
    same = api.client.post("/api/v1/templates", json.dumps(TEMPLATE, indent=4, sort_keys=True),
                           content_type="application/json",
                           headers={**api.headers, "Idempotency-Key": "k-2"})
    assert same.status_code == 201 and same["Idempotent-Replayed"] == "true"


def test_a_key_too_long_is_refused(shop, api):
    response = api.post("/templates", TEMPLATE, **{"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert not CouponTemplate.objects.filter(name=TEMPLATE["name"]).exists()


def test_keys_are_kept_seven_days_then_purged(shop, api):
    api.post("/templates", TEMPLATE, **{"Idempotency-Key": "old"})
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    again = api.post("/templates", TEMPLATE, **{"Idempotency-Key": "old"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=8))
    assert idempotency_purge() == 1 and not IdempotencyRecord.objects.exists()


THREADS = 16


@pytest.mark.race
@pytest.mark.django_db(transaction=True)
def test_16_submits_at_once_with_one_key_make_one_request(postgres_only):
    """16 threads, each on its own connection, send the same submit with one key at the
    same moment: one request is made; every other answer is its replay or a 409 in use.
    Seen to fail with the unique (partner, key) dropped: 16 requests were made."""
    shop = f.make_shop(3, prefix="IDEM-")
    # Unlimited, so nothing but the key stops a second request for the same accounts.
    template = f.make_template(shop.partner, shop.admin, issue_limit="unlimited")
    _key, token = make_key(shop.partner, shop.admin, "operator")
    body = json.dumps({"template_id": template.pk,
                       "account_ids": [a.account_id for a in shop.accounts]})
    barrier = threading.Barrier(THREADS)
    answers: list = [None] * THREADS

    def send(i):
        try:
            client = Client()
            barrier.wait(timeout=60)
            response = client.post("/api/v1/issuance_requests", body,
                                   content_type="application/json",
                                   headers={"Authorization": f"Bearer {token}",
                                            "Idempotency-Key": "same-submit"})
            answers[i] = (response.status_code, response.get("Idempotent-Replayed"),
                          response.json())
        except Exception as exc:  # noqa: BLE001 — reported below
            answers[i] = ("error", repr(exc), None)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(a is not None for a in answers), answers
    assert IssuanceRequest.objects.filter(partner=shop.partner).count() == 1, answers
    made = [a for a in answers if a[0] == 201 and a[1] is None]
    replayed = [a for a in answers if a[0] == 201 and a[1] == "true"]
    in_use = [a for a in answers if a[0] == 409]
    assert len(made) == 1, answers
    assert len(made) + len(replayed) + len(in_use) == THREADS, answers
    assert all(a[2] == made[0][2] for a in replayed)
    assert all(a[2]["error"]["code"] == "idempotency_key_in_use" for a in in_use)
