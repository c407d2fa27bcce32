"""Fixed-window rate limits kept in the cache (Redis in production, shared by every web
process): failed sign-ins per username, submits and approvals per user."""
import functools
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: int  # seconds


LOGIN_FAILURES = Limit("login", 5, 15 * 60)
SUBMITS = Limit("submit", 30, 60)
APPROVALS = Limit("approve", 120, 60)


def _fail_open(func):
    """The cache is Redis, the broker's server: when it is down, count nothing and limit
    nobody, rather than fail the sign-in, submit or approval the limit guards."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception:  # noqa: BLE001 — any cache backend's error
            log.warning("rate limit skipped: the cache is unavailable", exc_info=True)
            return 0  # no wait (reset's result is not used)

    return wrapper


def _keys(limit: Limit, who: str) -> tuple[str, str]:
    base = f"ratelimit:{limit.scope}:{who}"
    return base, base + ":start"


@_fail_open
def retry_after(limit: Limit, who: str) -> int:
    """Seconds until `who` may try again; 0 when not limited now."""
    if not settings.RATELIMIT_ENABLED:
        return 0
    count_key, start_key = _keys(limit, who)
    count = cache.get(count_key, 0)
    if count < limit.limit:
        return 0
    start = cache.get(start_key) or time.time()
    return max(int(start + limit.window - time.time()) + 1, 1)


@_fail_open
def hit(limit: Limit, who: str) -> int:
    """Count one attempt; return the seconds to wait if that went over the limit, else 0."""
    if not settings.RATELIMIT_ENABLED:
        return 0
    count_key, start_key = _keys(limit, who)
    cache.add(start_key, time.time(), limit.window)
    cache.add(count_key, 0, limit.window)
    try:
        count = cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, limit.window)
        count = 1
    if count > limit.limit:
        return retry_after(limit, who)
    return 0


@_fail_open
def reset(limit: Limit, who: str) -> None:
    cache.delete_many(list(_keys(limit, who)))


def wait_text(seconds: int) -> str:
    """'Try again at 16:45 (in 12 minutes).' in the platform's time zone."""
    from datetime import timedelta

    from django.utils import timezone

    at = timezone.localtime(timezone.now() + timedelta(seconds=seconds))
    if seconds < 90:
        return f"Try again in {seconds} seconds."
    minutes = (seconds + 59) // 60
    return f"Try again at {at:%H:%M} (in {minutes} minutes)."
