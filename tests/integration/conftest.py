"""A real Celery worker for the tests: `celery -A couponplatform worker` as a separate process,
on Redis, against the test database.

The worker sees what a test commits, so the tests use django_db(transaction=True). Everything
runs on a Redis database of its own (7) and a queue named for this run, so no other worker
(another test run, a developer's worker) takes these tasks. Eager mode is turned off only for
the duration of a test that asks for a worker, and restored after.

Skipped on SQLite or without Redis; in CI (env CI set) that is a failure instead, as with
postgres_only.
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.integration.processes import (
    RedisServer,
    Worker,
    database_url,
    free_port,
    producing_to,
    purge_queue,
    redis_client,
)

# A Redis database of its own on the shared server; the queue names this run.
REDIS_DB = int(os.environ.get("INTEGRATION_REDIS_DB", "7"))
QUEUE = f"cp-itest-{os.getpid()}-{secrets.token_hex(3)}"


def need(reason: str) -> None:
    """Skip here, fail in CI: CI must run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the worker tests: {reason}")
    pytest.skip(reason)


def _shared_redis_address() -> tuple[str, int]:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if url.startswith("redis://"):
        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or 6379
    return "127.0.0.1", 6379


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def worker_ready_db(request):
    """PostgreSQL with committed transactions (the worker must see the test's rows)."""
    if connection.vendor != "postgresql":
        need("the worker tests need PostgreSQL: set DATABASE_URL=postgres://…")
    request.getfixturevalue("transactional_db")


@pytest.fixture(scope="session")
def shared_redis_url() -> Iterator[str]:
    """redis://…/7 on the shared Redis server (CI's), pinged first."""
    host, port = _shared_redis_address()
    url = f"redis://{host}:{port}/{REDIS_DB}"
    try:
        redis_client(url, timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        need(f"no Redis at {host}:{port} ({exc}); start one or set CELERY_BROKER_URL")
    yield url
    purge_queue(url, QUEUE)


@pytest.fixture
def worker_factory(worker_ready_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """start(**options) → a running Worker; every worker started is stopped at the end,
    before the test database is flushed."""
    started: list[Worker] = []

    def start(*, broker_url: str, queue: str = QUEUE, wait: bool = True, **options) -> Worker:
        worker = Worker(name=f"w{len(started) + 1}-{secrets.token_hex(2)}",
                        broker_url=broker_url, queue=queue,
                        database_url=database_url(connection.settings_dict),
                        log_dir=tmp_path, **options)
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def on_shared_redis(worker_ready_db, shared_redis_url) -> Iterator[str]:
    """This test's `.delay()` calls go to the shared Redis, on this run's queue."""
    purge_queue(shared_redis_url, QUEUE)
    with producing_to(shared_redis_url, QUEUE):
        yield shared_redis_url
    purge_queue(shared_redis_url, QUEUE)


@pytest.fixture
def worker(on_shared_redis, worker_factory) -> Worker:
    """One worker (prefork, 2 processes) on the shared Redis and this run's queue."""
    return worker_factory(broker_url=on_shared_redis)


@pytest.fixture
def private_redis(worker_ready_db) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        need("redis-server is not installed")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()
