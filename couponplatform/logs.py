"""One JSON line per request and per task on stdout, and the request id that ties a request's
log line, its X-Request-ID response header, the tasks it enqueued and its audit rows together.

The id lives in a context variable: set by the middleware for a request, by the task
signals for a task (the id of the request that enqueued it, carried in a message header,
else the task's own id), read by `current_request_id()` where audit rows are written.
"""
import contextvars
import json
import logging
import re
import time
import traceback
import uuid
from datetime import UTC, datetime

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# The message header a published task carries its request id in (couponplatform/dispatch.py).
TASK_HEADER = "cp_request_id"
# A caller's (a proxy's, a client's) X-Request-ID is kept when it is a sane token; anything
# else (too long, spaces, quotes, control characters) is replaced by an id of our own.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

access_log = logging.getLogger("couponplatform.access")
task_log = logging.getLogger("couponplatform.tasks")


def current_request_id() -> str:
    return REQUEST_ID.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def annotate(request, **fields) -> None:
    """Add fields (partner, sub_account) to the request's log line; the tenant mixins call it
    once they know the tenant."""
    request.__dict__.setdefault("_log_fields", {}).update(fields)


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line: time, level, logger, message, the request
    id in force, the record's `fields` (extra={"fields": {...}}) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The request and task lines name theirs (formatting may happen later, elsewhere);
        # any other record is stamped with the one in force.
        request_id = REQUEST_ID.get()
        if request_id:
            data["request_id"] = request_id
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(data, default=str, ensure_ascii=False)


class RequestLogMiddleware:
    """Gives every request an id (a sane incoming X-Request-ID, else a new one), sends it back
    in the X-Request-ID header and logs one line when the response is ready."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if SANE_ID.fullmatch(incoming) else new_request_id()
        request.request_id = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("request", extra={"fields": self.fields(
                    request, response, time.perf_counter() - started)})
            return response
        finally:
            REQUEST_ID.reset(token)

    @staticmethod
    def fields(request, response, seconds: float) -> dict:
        from django.utils.functional import empty

        user = getattr(request, "user", None)
        # Only a user the request loaded already: the log line must not cost a query.
        loaded = user is not None and getattr(user, "_wrapped", None) is not empty
        user_id = user.pk if loaded and user.is_authenticated else None
        return {
            "event": "request", "request_id": request.request_id,
            "method": request.method, "path": request.path,
            "status": response.status_code, "duration_ms": round(seconds * 1000, 1),
            "user": user_id, **request.__dict__.get("_log_fields", {}),
        }


# Celery's task signals (connected in couponplatform/celery.py): the task's request id set
# before it runs, one line after it ran.
_running: dict[str, tuple[float, contextvars.Token]] = {}


def task_started(task_id=None, task=None, **_) -> None:
    request_id = (getattr(task.request, TASK_HEADER, None)
                  or (task.request.headers or {}).get(TASK_HEADER)
                  or REQUEST_ID.get() or task_id)
    _running[task_id] = (time.perf_counter(), REQUEST_ID.set(str(request_id)))


def task_finished(task_id=None, task=None, state=None, **_) -> None:
    started, token = _running.pop(task_id, (None, None))
    try:
        if started is not None and task_log.isEnabledFor(logging.INFO):
            task_log.info("task", extra={"fields": {
                "event": "task", "request_id": REQUEST_ID.get(),
                "task": task.name, "task_id": task_id,
                "retries": task.request.retries or 0, "state": state,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "queue": (task.request.delivery_info or {}).get("routing_key"),
            }})
    finally:
        if token is not None:
            REQUEST_ID.reset(token)
