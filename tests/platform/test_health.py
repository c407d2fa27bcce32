"""/healthz and /readyz (couponplatform/health.py): unauthenticated, cheap, never redirected
or rate-limited; /readyz answers 503 naming the database, the broker or the migrations when
one fails, and /healthz keeps answering while the database is down."""
import os
import shutil
import threading
import time

import pytest
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from tests.integration.processes import RedisServer, free_port


def body(response) -> dict:
    return response.json()


def test_healthz_answers_without_touching_the_database():
    """No django_db here: any query would raise (pytest-django blocks the database)."""
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"


def test_healthz_is_neither_redirected_to_https_nor_host_checked(settings):
    """A load balancer probes over plain HTTP, often by address."""
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/accounts/login/").status_code == 301  # the rest goes to HTTPS
    response = client.get("/healthz", HTTP_HOST="10.0.3.7:8000")
    assert response.status_code == 200


@pytest.mark.django_db
def test_health_checks_are_not_rate_limited_nor_need_a_sign_in(settings):
    settings.RATELIMIT_ENABLED = True
    client = Client()
    for _ in range(100):
        assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.head("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_is_cheap(django_assert_max_num_queries):
    client = Client()
    with django_assert_max_num_queries(3):  # SELECT 1; the migrations table, its rows
        assert client.get("/readyz").status_code == 200
    with django_assert_max_num_queries(1):  # the migration check holds a while
        assert client.get("/readyz").status_code == 200


@pytest.fixture
def own_redis():
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("CI must run this test: redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer.on_free_port()
    yield server
    server.stop()


@pytest.mark.django_db
def test_readyz_says_ok_with_the_database_the_broker_and_the_migrations(settings, own_redis):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = own_redis.url
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert body(response) == {"status": "ok", "checks": {
        "database": "ok", "broker": "ok", "migrations": "ok"}}


@pytest.mark.django_db
def test_readyz_says_503_naming_the_broker_when_it_is_down(settings, own_redis):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = own_redis.url
    client = Client()
    assert client.get("/readyz").status_code == 200
    own_redis.stop()  # the broker dies under a running web process
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert body(response) == {"status": "unavailable: broker", "checks": {
        "database": "ok", "broker": "unreachable (ConnectionError)", "migrations": "ok"}}
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_says_503_naming_a_broker_that_never_answered(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert body(response)["status"] == "unavailable: broker"


@pytest.mark.django_db
def test_readyz_says_503_naming_unapplied_migrations():
    # The audit app's latest migration, as a deploy that has not migrated yet leaves it.
    (latest,) = [name for app, name in MigrationLoader(connection).graph.leaf_nodes()
                 if app == "audit"]
    MigrationRecorder(connection).record_unapplied("audit", latest)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert body(response)["status"] == "unavailable: migrations"
    assert body(response)["checks"]["migrations"] == f"1 unapplied (audit.{latest})"


def unreachable(settings_dict: dict) -> dict:
    """The same database settings, pointing where no database answers."""
    if settings_dict["ENGINE"].endswith("postgresql"):
        return {**settings_dict, "HOST": "127.0.0.1", "PORT": str(free_port()),
                "OPTIONS": {**settings_dict.get("OPTIONS", {}), "connect_timeout": 2}}
    return {**settings_dict, "NAME": "/nonexistent-directory/db.sqlite3"}


@pytest.mark.django_db
def test_with_the_database_unreachable_readyz_says_503_and_healthz_still_answers():
    """The requests run in a thread of their own, whose connection (Django's are per thread)
    points at a port where nothing listens: a database that is down, as the web process
    meets it."""
    answers = {}

    def web_thread():
        own = connections[connection.alias]
        own.settings_dict = unreachable(own.settings_dict)
        try:
            client = Client()
            started = time.monotonic()
            answers["readyz"] = client.get("/readyz")
            answers["seconds"] = time.monotonic() - started
            answers["healthz"] = client.get("/healthz")
        finally:
            own.close()

    thread = threading.Thread(target=web_thread)
    thread.start()
    thread.join(30)
    readyz = answers["readyz"]
    assert readyz.status_code == 503
    assert body(readyz)["status"] == "unavailable: database, migrations"
    assert body(readyz)["checks"]["database"] == "unreachable (OperationalError)"
    assert body(readyz)["checks"]["migrations"] == "unknown (database unreachable)"
    assert answers["seconds"] < 5
    assert answers["healthz"].status_code == 200
