"""The health checks a load balancer and a process manager poll: `/healthz` (the process
answers; nothing else is touched) and `/readyz` (the database, the broker and the
migrations; 503 naming the part that fails). Answered by a middleware before sessions,
the host check and the HTTPS redirect, so they are cheap, need no sign-in and are never
rate-limited (docs/DEPLOY.md)."""
import json
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse

# A good migration check holds this long: loading the migration graph costs more than the
# rest of the check, and a migration is applied once per deploy.
MIGRATIONS_OK_SECONDS = 30
BROKER_TIMEOUT = 1.0
_migrations_ok_until = 0.0


def reset() -> None:
    """Forget the cached migration check (tests)."""
    global _migrations_ok_until
    _migrations_ok_until = 0.0


def check_database() -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 — any failure is "not ready"
        # The connection may be half-open; the next request opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def check_migrations() -> str:
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return "ok"
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return f"unknown ({type(exc).__name__})"
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        return f"{len(plan)} unapplied ({names}{', …' if len(plan) > 5 else ''})"
    _migrations_ok_until = time.monotonic() + MIGRATIONS_OK_SECONDS
    return "ok"


_brokers: dict = {}


def _broker_client(url: str):
    """One client (and its connection pool) per broker URL and process: a probe every few
    seconds reuses its connection instead of opening one."""
    if url not in _brokers:
        import redis

        _brokers[url] = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT,
                                             socket_timeout=BROKER_TIMEOUT)
    return _brokers[url]


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "ok (none: tasks run in-process)"
    try:
        _broker_client(settings.CELERY_BROKER_URL).ping()
    except Exception as exc:  # noqa: BLE001
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def readiness() -> tuple[bool, dict[str, str]]:
    checks = {"database": check_database(), "broker": check_broker()}
    # The migrations are read from the database: not asked when it is down.
    checks["migrations"] = (check_migrations() if checks["database"] == "ok"
                            else "unknown (database unreachable)")
    return all(value.startswith("ok") for value in checks.values()), checks


def _answer(status: int, body: dict) -> HttpResponse:
    content = json.dumps(body).encode()
    response = HttpResponse(content, status=status, content_type="application/json")
    response["Content-Length"] = str(len(content))
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    PATHS = ("/healthz", "/readyz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path not in self.PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        if request.path == "/healthz":
            return _answer(200, {"status": "ok"})
        ready, checks = readiness()
        failing = [name for name, value in checks.items() if not value.startswith("ok")]
        return _answer(200 if ready else 503,
                       {"status": "ok" if ready else f"unavailable: {', '.join(failing)}",
                        "checks": checks})
