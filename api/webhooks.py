"""Signed webhooks (docs/API.md, Webhooks): a partner admin registers endpoints; every
request and coupon event is written to the outbox (WebhookEvent, a WebhookDelivery per
subscribed endpoint) in the transaction of the change, and delivered by Celery with
retries and backoff for WEBHOOK_RETRY_HOURS, a sweeper queueing again what a lost message
or a killed worker left behind.

Delivery: one attempt at a time per delivery (a lease, `locked_until`, taken by a
conditional UPDATE); the POST goes to an address resolved and checked here (no private,
loopback or link-local address unless WEBHOOK_ALLOW_LOCAL), connected to by that address,
with a short timeout and no redirects followed. Every retry sends the same body, so a
receiver de-duplicates on the event's id.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import re
import secrets
import socket
import ssl
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from accounts.models import Partner
from accounts.permissions import partner_writer_require
from api import secret_box
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from audit.services import audit_record
from couponplatform import dispatch
from couponplatform.db import chunks
from couponplatform.exceptions import ApplicationError, InvalidTransitionError

# The events a partner can subscribe to, with what they mean (the console's choices).
EVENT_TYPES = {
    "request.approved": gettext_lazy("A request was approved (by its BD, automatically, or on "
                                     "a retry)."),
    "request.issued": gettext_lazy("A request's coupons were released."),
    "request.failed_to_issue": gettext_lazy("An approved request could not be released; the "
                                            "reason says why."),
    "request.rejected": gettext_lazy("The BD rejected a request."),
    "request.cancelled": gettext_lazy("A pending request was cancelled."),
    "coupon.voided": gettext_lazy("A coupon's unused balance was withdrawn."),
}
# The request status a move ends in → its event (withdrawn has none).
REQUEST_EVENTS = {
    "approved": "request.approved", "issued": "request.issued",
    "failed": "request.failed_to_issue", "rejected": "request.rejected",
    "cancelled": "request.cancelled",
}
SIGNATURE_HEADER = "Coupon-Signature"
URL_MAX = WebhookEndpoint._meta.get_field("url").max_length
DESCRIPTION_MAX = WebhookEndpoint._meta.get_field("description").max_length
ENDPOINTS_MAX = 16  # active endpoints per partner
# Backoff: BASE × 2^(attempt − 1), capped, then 80–100 % of it (jitter, so many deliveries
# failing together do not retry together), never past the delivery's retry window.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# An attempt's lease: far above WEBHOOK_TIMEOUT (connect and read), so only a dead worker's
# attempt outlives it.
LEASE = timedelta(minutes=2)
# A delivery whose task was published this long ago and has not run: its message is taken
# for lost and the sweeper publishes another.
REQUEUE_AFTER = timedelta(minutes=10)
TASK_CHUNK = 20  # deliveries a task attempts, one after another
ADDRESSES_TRIED = 3  # of a host's (checked) addresses, so an attempt stays inside its lease
SWEEP_LIMIT = 2000  # deliveries a sweep queues at most
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
ERROR_MAX = WebhookDelivery._meta.get_field("last_error").max_length


# What a delivery's log says of a failed attempt, in the platform's words: written in
# English (the record), shown in the reader's language by delivery_error_text. The
# refusals of resolve_checked and address_refusal are read back the same way.
REFUSED = gettext_noop("Refused: %(why)s")
NO_ANSWER = gettext_noop("%(host)s did not answer.")
ANSWERED = gettext_noop("The endpoint answered %(code)s.")
NOT_ITS_PARTNER = gettext_noop("The event is not this endpoint's partner's.")
WAS_DISABLED = gettext_noop("The endpoint was disabled.")
UNRESOLVED = gettext_noop("%(host)s could not be resolved.")
NOT_PUBLIC = gettext_noop("%(host)s resolves to %(address)s, %(why)s; webhooks are sent to "
                          "public addresses only.")
LOOPBACK = gettext_noop("a loopback address")
LINK_LOCAL = gettext_noop("a link-local address")
PRIVATE = gettext_noop("a private or reserved address")
LOGGED = (REFUSED, NO_ANSWER, ANSWERED, NOT_ITS_PARTNER, WAS_DISABLED, UNRESOLVED, NOT_PUBLIC,
          LOOPBACK, LINK_LOCAL, PRIVATE)


def _logged_pattern(english: str) -> re.Pattern:
    pieces = re.split(r"%\((\w+)\)s", english)  # text, name, text, name, ..., text
    return re.compile("".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>.+?)"
                              for i, piece in enumerate(pieces)))


_LOGGED_PATTERNS = [(english, _logged_pattern(english)) for english in LOGGED]


def delivery_error_text(text: str) -> str:
    """A delivery's logged error in the active language: a message of LOGGED translated,
    its filled-in parts read back the same way (a refusal's reason); anything else (what
    the network library said) as it was logged."""
    for english, pattern in _LOGGED_PATTERNS:
        if match := pattern.fullmatch(text):
            return _(english) % {name: delivery_error_text(value)
                                 for name, value in match.groupdict().items()}
    return text


class AddressRefused(Exception):
    """The endpoint's host is, or resolves to, an address the platform does not call."""


# ---------------------------------------------------------------------------------------
# Addresses


def _allow_local() -> bool:
    return bool(settings.WEBHOOK_ALLOW_LOCAL)


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the platform does not call `ip` in production, or None: only public unicast
    addresses (so neither the platform's own network nor a cloud's metadata address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return _(LOOPBACK)
    if ip.is_link_local:
        return _(LINK_LOCAL)
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return _(PRIVATE)
    return None


def resolve_checked(host: str, port: int) -> list[tuple[int, str]]:
    """Every address `host` resolves to, as (family, address), each checked: if any one is
    refused, all are (a host that also answers with an inner address is not called)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(_(UNRESOLVED) % {"host": host}) from exc
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = sockaddr[0]
        if (family, address) in addresses:
            continue
        if not _allow_local():
            why = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if why:
                raise AddressRefused(_(NOT_PUBLIC) % {"host": host, "address": address,
                                                      "why": why})
        addresses.append((family, address))
    if not addresses:
        raise AddressRefused(_(UNRESOLVED) % {"host": host})
    return addresses


def url_refusal(url: str) -> str | None:
    """What is wrong with `url` as an endpoint, in the words the console shows; None when
    it may be registered (it resolves, to allowed addresses only)."""
    if not url:
        return _("Enter the endpoint's URL.")
    if len(url) > URL_MAX:
        return _("A URL has at most %(max)s characters.") % {"max": f"{URL_MAX:,}"}
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        return _("The URL may hold no spaces or non-ASCII characters (write an IDN in its "
                 "xn-- form).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("This is not a valid URL.")
    schemes = ("https", "http") if _allow_local() else ("https",)
    if parts.scheme not in schemes:
        return _("The URL must start with https:// (webhooks are sent over HTTPS only).")
    if parts.username is not None or parts.password is not None:
        return _("The URL may not hold a user name or password.")
    if parts.fragment:
        return _("The URL may not hold a #fragment.")
    host = (parts.hostname or "").lower()
    if not host:
        return _("The URL has no host name.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.match(host):
            return _("%(host)s is not a valid host name.") % {"host": host}
    try:
        resolve_checked(host, port or _default_port(parts.scheme))
    except AddressRefused as exc:
        return str(exc)
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


# ---------------------------------------------------------------------------------------
# Endpoints


def _require_admin(partner: Partner, acting_user) -> None:
    partner_writer_require(
        acting_user, partner, action="webhooks_manage",
        wrong_role=_("Only a partner admin can manage webhook endpoints."),
    )


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {"url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description, "disabled_at": endpoint.disabled_at}


def webhook_endpoint_create(
    *, partner: Partner, acting_user, url: str, events: Iterable[str], description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of `partner` and its signing secret, shown to the partner once."""
    _require_admin(partner, acting_user)
    url = (url or "").strip()
    description = (description or "").strip()
    chosen = list(dict.fromkeys(events or ()))
    errors = {}
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        errors["events"] = ngettext(
            "Unknown event type: %(types)s.", "Unknown event types: %(types)s.",
            len(unknown)) % {"types": ", ".join(map(str, unknown))}
    elif not chosen:
        errors["events"] = _("Choose at least one event to receive.")
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = _("A description has at most %(max)s characters.") % {
            "max": DESCRIPTION_MAX}
    if (problem := url_refusal(url)) is not None:
        errors["url"] = problem
    if not errors and WebhookEndpoint.objects.filter(
            partner=partner, disabled_at__isnull=True).count() >= ENDPOINTS_MAX:
        errors["url"] = _("A partner has at most %(max)s active endpoints; disable one "
                          "first.") % {"max": ENDPOINTS_MAX}
    if errors:
        raise ApplicationError(" ".join(errors.values()), extra={"errors": errors})
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            partner=partner, url=url, events=[e for e in EVENT_TYPES if e in chosen],
            description=description, secret_box=secret_box.seal(secret),
            created_by=acting_user,
        )
        audit_record(actor=acting_user, partner=partner, action="webhook_endpoint.create",
                     obj=endpoint, after=_snapshot(endpoint))
    return endpoint, secret


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, acting_user) -> WebhookEndpoint:
    """Stop sending to the endpoint; its pending deliveries end as failed when next tried."""
    _require_admin(endpoint.partner, acting_user)
    with transaction.atomic():
        locked = (WebhookEndpoint.objects.select_for_update().select_related("partner")
                  .get(pk=endpoint.pk))
        if locked.disabled_at is not None:
            raise InvalidTransitionError(_("This endpoint is already disabled."))
        before = _snapshot(locked)
        locked.disabled_at = timezone.now()
        locked.disabled_by = acting_user
        locked.save(update_fields=["disabled_at", "disabled_by"])
        audit_record(actor=acting_user, partner=locked.partner, action="webhook_endpoint.disable",
                     obj=locked, before=before, after=_snapshot(locked))
    return locked


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return secret_box.unseal(endpoint.secret_box)


# ---------------------------------------------------------------------------------------
# The outbox


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def event_body(*, event_id: str, type: str, created: datetime, data: dict) -> str:
    """The JSON every delivery of the event sends, byte for byte."""
    return json.dumps({"id": event_id, "object": "event", "type": type,
                       "created": timezone.localtime(created).isoformat(), "data": data},
                      separators=(",", ":"), ensure_ascii=False)


def subscribed_endpoints(partner_id: int, type: str) -> list[WebhookEndpoint]:
    """The partner's active endpoints that receive `type` (a partner has a few; the JSON
    list is read here rather than queried, which SQLite could not)."""
    return [e for e in WebhookEndpoint.objects.filter(partner_id=partner_id,
                                                      disabled_at__isnull=True)
            .only("pk", "events").order_by("pk") if type in e.events]


def webhook_events_record(*, partner_id: int, type: str, objects: list[dict],
                          endpoints: list[WebhookEndpoint] | None = None) -> list[int]:
    """Write an event per data dict in `objects` and a delivery per (event, subscribed
    endpoint), in the caller's transaction, and queue their delivery once it commits.
    Returns the deliveries' ids; writes nothing when no endpoint subscribes."""
    if endpoints is None:
        endpoints = subscribed_endpoints(partner_id, type)
    if not endpoints or not objects:
        return []
    now = timezone.now()
    events = []
    for data in objects:
        event_id = new_event_id()
        events.append(WebhookEvent(public_id=event_id, partner_id=partner_id, type=type,
                                   created_at=now, body=event_body(
                                       event_id=event_id, type=type, created=now, data=data)))
    WebhookEvent.objects.bulk_create(events, batch_size=1000)
    window = timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    deliveries = [WebhookDelivery(event=event, endpoint=endpoint, created_at=now,
                                  next_attempt_at=now, give_up_at=now + window, enqueued_at=now)
                  for event in events for endpoint in endpoints]
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=1000)
    ids = [d.pk for d in deliveries]
    for chunk in chunks(ids, TASK_CHUNK):
        dispatch.enqueue_on_commit(dispatch.WEBHOOK_DELIVER, list(chunk))
    return ids


# ---------------------------------------------------------------------------------------
# Delivery


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long after its `attempts`-th failed attempt a delivery is tried again."""
    step = min(BACKOFF_BASE * (2 ** min(max(attempts - 1, 0), 20)), BACKOFF_CAP)
    return step * (rng or random).uniform(0.8, 1.0)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Coupon-Signature header: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (its Host header) at the address already checked, not resolved again."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` (its certificate and SNI) at the address already checked."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_MAX]


def http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST `body` to `url`: (status code, "") when it answered, (None, why) when not.
    Redirects are answers (3xx), not followed: a redirect could lead anywhere."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _default_port(parts.scheme)
    try:
        addresses = resolve_checked(host, port)
    except AddressRefused as exc:
        return None, (REFUSED % {"why": exc})[:ERROR_MAX]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    timeout = settings.WEBHOOK_TIMEOUT
    error = ""
    for _family, address in addresses[:ADDRESSES_TRIED]:
        connection = kind(host, port, address=address, timeout=timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:  # this address does not answer: try the next one
                error = _short(exc)
                continue
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read(4096)
                return response.status, ""
            except (OSError, http.client.HTTPException) as exc:
                return None, _short(exc)
        finally:
            connection.close()
    return None, error or NO_ANSWER % {"host": host}


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery's lease for one attempt, if it is pending, due and not in flight;
    the attempt counts from here (a worker that dies now may have reached the receiver)."""
    now = timezone.now()
    lease = now + LEASE
    taken = WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now),
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
    ).update(locked_until=lease, attempts=F("attempts") + 1, enqueued_at=None,
             last_attempt_at=now)
    if not taken:
        return None
    return (WebhookDelivery.objects.select_related("event", "endpoint")
            .get(pk=delivery_id))


def _record(claimed: WebhookDelivery, *, code: int | None, error: str) -> str:
    """The attempt's outcome, written only if this attempt still holds the lease."""
    now = timezone.now()
    ok = code is not None and 200 <= code < 300
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().filter(
            pk=claimed.pk, attempts=claimed.attempts, locked_until=claimed.locked_until,
        ).first()
        if row is None:
            return "superseded"
        row.locked_until = None
        row.last_status_code = code
        row.last_error = "" if ok else (error or ANSWERED % {"code": code})[:ERROR_MAX]
        if ok:
            row.status, row.delivered_at, row.next_attempt_at = (
                WebhookDelivery.Status.SUCCEEDED, now, None)
        elif now >= row.give_up_at:
            row.status, row.next_attempt_at = WebhookDelivery.Status.FAILED, None
        else:
            row.next_attempt_at = min(now + backoff(row.attempts), row.give_up_at)
        row.save(update_fields=["locked_until", "last_status_code", "last_error", "status",
                                "delivered_at", "next_attempt_at"])
    return row.status


def _give_up(claimed: WebhookDelivery, why: str) -> str:
    WebhookDelivery.objects.filter(pk=claimed.pk, attempts=claimed.attempts).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None, locked_until=None,
        last_error=why[:ERROR_MAX], last_status_code=None)
    return WebhookDelivery.Status.FAILED


def webhook_deliver(*, delivery_id: int) -> str:
    """One attempt of one delivery: "skipped" when it is not due, done or in flight;
    otherwise the delivery's status after the attempt. Its log is written in English
    whatever language the caller's request has (delivery_error_text shows it translated)."""
    with translation.override(settings.LANGUAGE_CODE):
        return _deliver(delivery_id)


def _deliver(delivery_id: int) -> str:
    claimed = _claim(delivery_id)
    if claimed is None:
        return "skipped"
    endpoint, event = claimed.endpoint, claimed.event
    # Tasks re-check the tenant: an endpoint receives its own partner's events only.
    if endpoint.partner_id != event.partner_id:
        return _give_up(claimed, NOT_ITS_PARTNER)
    if endpoint.disabled_at is not None:
        return _give_up(claimed, WAS_DISABLED)
    body = event.body.encode()
    timestamp = int(timezone.now().timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "CouponPlatform-Webhooks/1",
        SIGNATURE_HEADER: signature(endpoint_secret(endpoint), timestamp, body),
        "Coupon-Event-Id": event.public_id,
    }
    code, error = http_post(endpoint.url, body, headers)
    return _record(claimed, code=code, error=error)


def webhook_deliver_many(*, delivery_ids: Iterable[int]) -> dict[int, str]:
    return {pk: webhook_deliver(delivery_id=pk) for pk in delivery_ids}


def webhook_sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Queue the deliveries that are due and neither in flight nor queued lately: retries
    whose time has come, attempts whose worker died (their lease ran out), and those whose
    message was lost (queued more than REQUEUE_AFTER ago). Returns how many it queued."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lte=now),
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - REQUEUE_AFTER),
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
        ).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if not due:
        return 0
    WebhookDelivery.objects.filter(pk__in=due).update(enqueued_at=now)
    for chunk in chunks(due, TASK_CHUNK):
        dispatch.enqueue_on_commit(dispatch.WEBHOOK_DELIVER, list(chunk))
    return len(due)


def webhook_redeliver(*, delivery: WebhookDelivery, acting_user) -> WebhookDelivery:
    """A partner admin sends a delivery again (the same event id and body), now, with a new
    retry window; refused while an attempt of it is in flight."""
    _require_admin(delivery.endpoint.partner, acting_user)
    now = timezone.now()
    with transaction.atomic():
        row = (WebhookDelivery.objects.select_for_update(of=("self",))
               .select_related("endpoint__partner", "event").get(pk=delivery.pk))
        if row.endpoint.disabled_at is not None:
            raise ApplicationError(_("This endpoint is disabled; nothing is sent to it."))
        if row.locked_until is not None and row.locked_until > now:
            raise InvalidTransitionError(_("This delivery is being attempted right now; look "
                                           "again in a minute."))
        before = {"status": row.status, "attempts": row.attempts,
                  "next_attempt_at": row.next_attempt_at}
        row.status = WebhookDelivery.Status.PENDING
        row.next_attempt_at = now
        row.give_up_at = now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
        row.enqueued_at = now
        row.save(update_fields=["status", "next_attempt_at", "give_up_at", "enqueued_at"])
        audit_record(actor=acting_user, partner=row.endpoint.partner,
                     action="webhook_delivery.redeliver", obj=row, before=before,
                     after={"status": row.status, "event": row.event.public_id,
                            "next_attempt_at": now})
        dispatch.enqueue_on_commit(dispatch.WEBHOOK_DELIVER, [row.pk])
    return row
