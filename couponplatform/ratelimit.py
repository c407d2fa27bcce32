"""Fixed-window rate limits kept in the cache (Redis in production, shared by every web
process): failed sign-ins per (username, client), per username and per client; submits and
approvals per user."""
import functools
import hashlib
import ipaddress
import logging
import time
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy, ngettext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: int  # seconds


# Sign-in failures, counted three ways (docs/ARCHITECTURE.md, Security). Five wrong
# passwords lock a username for the client that sent them, not for everyone: a stranger can
# not lock `bd` out of the office with five guesses. Guesses from many clients still meet
# the username's own limit, and one client spraying many usernames meets its own.
LOGIN_PAIR_FAILURES = Limit("login", 5, 15 * 60)
LOGIN_USER_FAILURES = Limit("login-user", 50, 15 * 60)
LOGIN_CLIENT_FAILURES = Limit("login-client", 30, 15 * 60)
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


# ---------------------------------------------------------------------------------------
# Sign-in: who is counted


def login_username_key(raw) -> str:
    """The username as authentication reads it, case-folded, as a short digest.

    The sign-in form's own field cleans it (strip, then NFKC: "ｂd2" is "bd2"), so every
    spelling that can sign in as a user is counted as that user; case-folding then joins
    spellings that differ only by case (the lockout holds for both, never for neither).
    The digest keeps the cache key short whatever was posted."""
    from django.contrib.auth.forms import UsernameField

    field = UsernameField(max_length=150)
    value = field.to_python("" if raw is None else str(raw))
    folded = unicodedata.normalize("NFKC", value.casefold())
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_key(request) -> str:
    """The address the request came from: REMOTE_ADDR, or, behind
    `RATELIMIT_TRUSTED_PROXIES` proxies, the address the outermost of them saw (each proxy
    appends the address it was called from to X-Forwarded-For, so a client's own entries are
    to the left of it and never read). IPv6 clients count by their /64, which one host
    usually holds whole."""
    address = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.RATELIMIT_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in
                     request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _login_counters(request, raw_username) -> list[tuple[Limit, str, str]]:
    user, client = login_username_key(raw_username), client_key(request)
    return [
        (LOGIN_PAIR_FAILURES, f"{user}:{client}", USER_LOCKED),
        (LOGIN_USER_FAILURES, user, USER_LOCKED),
        (LOGIN_CLIENT_FAILURES, client, CLIENT_LOCKED),
    ]


USER_LOCKED = gettext_lazy("Too many failed sign-ins for this user.")
CLIENT_LOCKED = gettext_lazy("Too many failed sign-ins from your network.")


def login_refusal(request, raw_username) -> str | None:
    """Why this sign-in is refused before its password is checked, with when to retry; None
    when it may go ahead."""
    return _refusal([(retry_after(limit, who), text)
                     for limit, who, text in _login_counters(request, raw_username)])


def login_failed(request, raw_username) -> str | None:
    """Count a failed sign-in; the refusal if that went over a limit, else None."""
    return _refusal([(hit(limit, who), text)
                     for limit, who, text in _login_counters(request, raw_username)])


def login_succeeded(request, username: str) -> None:
    """A right password clears its client's failures for that user. Not the user's own
    count, nor the client's: neither says the other guesses were the user's."""
    limit, who, _text = _login_counters(request, username)[0]
    reset(limit, who)


def _refusal(waits: list[tuple[int, str]]) -> str | None:
    wait, text = max(waits, key=lambda pair: pair[0])
    return f"{text} {wait_text(wait)}" if wait else None


def wait_text(seconds: int) -> str:
    """'Try again at 16:45 (in 12 minutes).' in the platform's time zone."""
    from datetime import timedelta

    from django.utils import timezone

    at = timezone.localtime(timezone.now() + timedelta(seconds=seconds))
    if seconds < 90:
        return ngettext("Try again in %(n)s second.", "Try again in %(n)s seconds.",
                        seconds) % {"n": seconds}
    minutes = (seconds + 59) // 60
    return ngettext("Try again at %(time)s (in %(n)s minute).",
                    "Try again at %(time)s (in %(n)s minutes).", minutes) % {
        "time": f"{at:%H:%M}", "n": minutes}
