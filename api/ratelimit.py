"""Each API key's token bucket: API_RATELIMIT_BURST requests at once, refilled at
API_RATELIMIT_PER_SECOND. In Redis (the Django cache, shared by every web process) the
bucket moves in one Lua script on Redis's own clock, so two processes never both spend the
last token; with the in-process cache (the embedded mode) under a lock. When Redis does not
answer, nobody is limited (as couponplatform/ratelimit.py)."""
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV: capacity, refill per second, cost. Returns
# {allowed, tokens left × 1000, ms until a token, ms until full}.
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then tokens = tokens - cost; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
local wait = 0
if tokens < cost then wait = (cost - tokens) / rate end
return {allowed, math.floor(tokens * 1000), math.ceil(wait * 1000),
        math.ceil((capacity - tokens) / rate * 1000)}
"""


@dataclass(frozen=True)
class Bucket:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until a request would be allowed (0 when it is)
    reset: int  # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
               "RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(max(self.retry_after, 1))
        return out


_local: dict[str, tuple[float, float]] = {}
_local_lock = threading.Lock()
_script = None


def _take_local(name: str, capacity: int, rate: float) -> tuple[bool, float, float, float]:
    with _local_lock:
        now = time.monotonic()
        tokens, ts = _local.get(name, (float(capacity), now))
        tokens = min(capacity, tokens + (now - ts) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        _local[name] = (tokens, now)
    wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
    return allowed, tokens, wait, (capacity - tokens) / rate


def _take_redis(client, name: str, capacity: int, rate: float):
    global _script
    if _script is None:
        _script = client.register_script(_SCRIPT)
    allowed, milli_tokens, wait_ms, full_ms = _script(keys=[name], args=[capacity, rate, 1],
                                                      client=client)
    return bool(allowed), milli_tokens / 1000, wait_ms / 1000, full_ms / 1000


def bucket_take(key_id: int) -> Bucket | None:
    """Spend one token of the key's bucket; None when limits are off or Redis is away."""
    if not settings.RATELIMIT_ENABLED:
        return None
    capacity = settings.API_RATELIMIT_BURST
    rate = settings.API_RATELIMIT_PER_SECOND
    name = cache.make_key(f"api-bucket:{key_id}")
    try:
        client_of = getattr(cache, "_cache", None)
        if client_of is not None and hasattr(client_of, "get_client"):
            allowed, tokens, wait, full = _take_redis(
                client_of.get_client(name, write=True), name, capacity, rate)
        else:
            allowed, tokens, wait, full = _take_local(name, capacity, rate)
    except Exception:  # noqa: BLE001 — any cache backend's error: fail open
        log.warning("API rate limit skipped: the cache is unavailable", exc_info=True)
        return None
    return Bucket(allowed=allowed, limit=capacity, remaining=int(math.floor(tokens)),
                  retry_after=math.ceil(wait), reset=math.ceil(full))


def bucket_forget(key_id: int) -> None:
    """Fill the key's bucket again (a new key's bucket is full)."""
    name = cache.make_key(f"api-bucket:{key_id}")
    _local.pop(name, None)
    client_of = getattr(cache, "_cache", None)
    if client_of is not None and hasattr(client_of, "get_client"):
        client_of.get_client(name, write=True).delete(name)
