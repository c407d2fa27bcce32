"""Rate limits per key: a token bucket in the cache (Redis in CI, shared by every web
process), 429 with Retry-After once it is empty, RateLimit-* headers on every answer."""
import threading

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from api.ratelimit import bucket_forget, bucket_take
from tests.api.helpers import Api, error_of, make_key


@pytest.fixture
def limited(settings):
    settings.RATELIMIT_ENABLED = True
    settings.API_RATELIMIT_BURST = 3
    settings.API_RATELIMIT_PER_SECOND = 0.01  # a token every 100 s: nothing refills here
    yield settings


def test_the_bucket_answers_429_with_retry_after_and_headers_on_every_answer(
        limited, shop, operator_key, api):
    key, _ = operator_key
    bucket_forget(key.pk)
    remaining = []
    for _ in range(3):
        response = api.get("/templates")
        assert response.status_code == 200
        assert response["RateLimit-Limit"] == "3"
        remaining.append(int(response["RateLimit-Remaining"]))
        assert int(response["RateLimit-Reset"]) > 0
    assert remaining == [2, 1, 0]
    refused = api.get("/templates")
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "rate_limited"
    assert error_of(refused)["type"] == "rate_limit_error"
    assert 1 <= int(refused["Retry-After"]) <= 100
    assert refused["RateLimit-Remaining"] == "0"
    # An error answer carries them too, and another key has its own bucket.
    other_key, token = make_key(shop.partner, shop.admin, "read_only")
    bucket_forget(other_key.pk)
    other = Api(token)
    assert other.get("/templates/0").status_code == 404
    assert other.get("/templates/0")["RateLimit-Remaining"] == "1"


def test_racing_requests_spend_each_token_once(limited, shop, operator_key):
    """In Redis the bucket moves in one script: 20 takes at once pass exactly 3."""
    key, _ = operator_key
    bucket_forget(key.pk)
    barrier = threading.Barrier(20)
    allowed = []

    def take():
        barrier.wait(timeout=30)
        allowed.append(bucket_take(key.pk).allowed)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(allowed) == [False] * 17 + [True] * 3


def test_redis_holds_the_bucket_in_ci():
    if not django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs the Redis cache (CELERY_BROKER_URL set)")
    assert hasattr(cache._cache, "get_client")


def test_without_a_cache_nobody_is_limited(limited, shop, operator_key, api, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr("api.ratelimit._take_redis", down)
    monkeypatch.setattr("api.ratelimit._take_local", down)
    for _ in range(5):
        response = api.get("/partner")
        assert response.status_code == 200 and "RateLimit-Limit" not in response


def test_the_in_process_bucket_of_the_embedded_mode(limited):
    limited.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    bucket_forget(987654)
    takes = [bucket_take(987654) for _ in range(4)]
    assert [t.allowed for t in takes] == [True, True, True, False]
    assert [t.remaining for t in takes] == [2, 1, 0, 0]
    assert takes[-1].headers()["Retry-After"] == str(takes[-1].retry_after)
