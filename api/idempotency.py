"""Idempotency-Key on every POST (docs/API.md, Idempotency): the first request with a key
does the work and keeps its answer; a retry gets that answer again with
`Idempotent-Replayed: true`; the same key with another request is 422; a request while the
first is still running is 409.

The record is inserted first and commits in the same transaction as the work, so a crash
leaves both or neither. The unique (partner, key) is what lets one of many racing requests
do the work: the others' INSERT waits on the first's uncommitted row. On PostgreSQL that
wait is cut short (IN_USE_WAIT), so they answer 409 at once instead of queueing behind it;
one that arrives after the first committed finds its record and replays it."""
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from api.errors import ApiError, error_response, from_application_error
from api.models import IdempotencyRecord
from couponplatform.exceptions import ApplicationError

HEADER = "Idempotency-Key"
KEY_MAX = 255
IN_USE_WAIT = "100ms"


def fingerprint(request) -> str:
    """The request a key was first used for: method, path, query and body (JSON compared
    by its content, so spacing and key order do not matter)."""
    try:
        body = json.dumps(json.loads(request.body or b"null"), sort_keys=True,
                          separators=(",", ":"))
    except ValueError:
        body = request.body.decode("utf-8", "replace")
    query = "&".join(sorted(request.GET.urlencode().split("&")))
    raw = "\n".join([request.method, request.path, query, body])
    return hashlib.sha256(raw.encode()).hexdigest()


def _outcome(request, work: Callable[[], tuple[int, dict]]) -> tuple[int, dict, dict]:
    """(status, body, headers) of the work; a refusal is an answer too. Whatever the work
    wrote before it was refused is rolled back with its savepoint."""
    try:
        with transaction.atomic():
            status, body = work()
        return status, body, {}
    except ApplicationError as exc:
        err = from_application_error(exc)
    except Http404:
        err = ApiError(404, "resource_missing",
                       _("No such object (or it is not your partner's)."))
    except ApiError as exc:
        err = exc
    response = error_response(request, err)
    return err.status, json.loads(response.content), dict(err.headers)


def _respond(status: int, body: dict, headers: dict | None = None, *, replayed=False):
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _claim(*, partner, key: str, print_: str, api_key) -> IdempotencyRecord:
    """This request's record, new and uncommitted; raises the answer when the key was
    used before (a replay, or a mismatch) or is in use now."""
    IdempotencyRecord.objects.filter(
        partner=partner, key=key,
        created_at__lt=timezone.now() - timedelta(days=settings.API_IDEMPOTENCY_DAYS),
    ).delete()
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{IN_USE_WAIT}'")
            record = IdempotencyRecord.objects.create(
                partner=partner, key=key, fingerprint=print_, api_key=api_key,
                status_code=0, body={},
            )
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
        return record
    except OperationalError as exc:  # the first request's row is not committed yet
        raise ApiError(409, "idempotency_key_in_use",
                       _("A request with this Idempotency-Key is still running; retry when "
                         "it has answered."), param=HEADER) from exc
    except IntegrityError:
        earlier = IdempotencyRecord.objects.get(partner=partner, key=key)
        raise _Replay(earlier) from None


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord):
        self.record = record


def idempotent_post(request, work: Callable[[], tuple[int, dict]]):
    """Run `work` (returning status and JSON body) once per Idempotency-Key."""
    key = request.headers.get(HEADER)
    if key is None:
        status, body, headers = _outcome(request, work)
        return _respond(status, body, headers)
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise ApiError(422, "idempotency_key_invalid",
                       _("An Idempotency-Key has 1 to %(max)s printable characters.")
                       % {"max": KEY_MAX},
                       param=HEADER)
    api_key = request.api_key
    print_ = fingerprint(request)
    try:
        with transaction.atomic():
            record = _claim(partner=api_key.partner, key=key, print_=print_, api_key=api_key)
            status, body, headers = _outcome(request, work)
            record.status_code, record.body = status, body
            record.save(update_fields=["status_code", "body"])
    except _Replay as replay:
        earlier = replay.record
        if earlier.fingerprint != print_:
            raise ApiError(422, "idempotency_key_mismatch",
                           _("This Idempotency-Key was used for another request; use a new "
                             "key for a new request."), param=HEADER) from None
        return _respond(earlier.status_code, earlier.body, replayed=True)
    return _respond(status, body, headers)


def idempotency_purge(*, days: int | None = None) -> int:
    """Delete the records older than the days they are kept; returns how many."""
    cutoff = timezone.now() - timedelta(days=days or settings.API_IDEMPOTENCY_DAYS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
