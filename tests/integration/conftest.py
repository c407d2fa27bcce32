"""A real Celery worker for the tests: `celery -A couponplatform worker` as a separate process,
on Redis, against the test database.

The worker sees what a test commits, so the tests use django_db(transaction=True). Everything
runs on a redis-server of this run's own (a free port, no persistence), never on the broker
of CELERY_BROKER_URL: on a shared server, kombu's restore of unacknowledged messages sweeps
the whole database, so a worker of this run with its short visibility timeout would hand
out again another run's (or a developer's) unfinished tasks, and theirs ours; and the
workers' cache (release progress, keyed by request id) would be shared. The queue is named
for the run all the same. Eager mode is turned off only for the duration of a test that
asks for a worker, and restored after.

Skipped on SQLite or without redis-server; in CI (env CI set) that is a failure instead, as
with postgres_only.
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from tests.integration.processes import (
    RedisServer,
    Worker,
    database_url,
    producing_to,
    purge_queue,
)

QUEUE = f"cp-itest-{os.getpid()}-{secrets.token_hex(3)}"
# A worker's visibility timeout unless the test sets one: production's, so a task that is
# only slow is never handed out twice. The tests of a killed worker set a short one.
PRODUCTION_VISIBILITY_TIMEOUT = 3600


def need(reason: str) -> None:
    """Skip here, fail in CI: CI must run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the worker tests: {reason}")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def worker_ready_db(request):
    """PostgreSQL with committed transactions (the worker must see the test's rows)."""
    if connection.vendor != "postgresql":
        need("the worker tests need PostgreSQL: set DATABASE_URL=postgres://…")
    request.getfixturevalue("transactional_db")


def _redis_server() -> RedisServer:
    if not shutil.which("redis-server"):
        need("redis-server is not installed")
    return RedisServer.on_free_port()


@pytest.fixture(scope="session")
def session_redis() -> Iterator[str]:
    """redis://…/0 of a redis-server started for this run, kept for the whole session."""
    server = _redis_server()
    yield server.url
    server.stop()


@pytest.fixture
def worker_factory(worker_ready_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """start(**options) → a running Worker; every worker started is stopped at the end,
    before the test database is flushed."""
    started: list[Worker] = []

    def start(*, broker_url: str, queue: str = QUEUE, wait: bool = True,
              visibility_timeout: int = PRODUCTION_VISIBILITY_TIMEOUT, **options) -> Worker:
        worker = Worker(name=f"w{len(started) + 1}-{secrets.token_hex(2)}",
                        broker_url=broker_url, queue=queue,
                        database_url=database_url(connection.settings_dict),
                        log_dir=tmp_path, visibility_timeout=visibility_timeout, **options)
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def on_redis(worker_ready_db, session_redis) -> Iterator[str]:
    """This test's `.delay()` calls go to the run's Redis, on this run's queue."""
    purge_queue(session_redis, QUEUE)
    with producing_to(session_redis, QUEUE):
        yield session_redis
    purge_queue(session_redis, QUEUE)


@pytest.fixture
def worker(on_redis, worker_factory) -> Worker:
    """One worker (prefork, 2 processes) on the run's Redis and this run's queue."""
    return worker_factory(broker_url=on_redis)


@pytest.fixture
def private_redis(worker_ready_db) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, start, freeze and thaw."""
    server = _redis_server()
    yield server
    server.stop()
