"""Fixed-window rate limits kept in the cache (Redis in production, shared by every web
process): failed sign-ins per username, submits and approvals per user."""
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: int  # seconds


LOGIN_FAILURES = Limit("login", 5, 15 * 60)
SUBMITS = Limit("submit", 30, 60)
APPROVALS = Limit("approve", 120, 60)


def _keys(limit: Limit, who: str) -> tuple[str, str]:
    base = f"ratelimit:{limit.scope}:{who}"
    return base, base + ":start"


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
