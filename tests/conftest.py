"""Shared fixtures. Celery runs eagerly in tests unless a test starts a real worker; every
test runs on the pinned clock of tests/clock.py, never on the calendar's day."""
import os

import pytest
from django.db import connection
from django.utils import translation

from couponplatform.celery import app as celery_app
from tests import clock
from tests import factories as f


def pytest_configure(config):
    clock.pin(tz=os.environ.get("TIME_ZONE", "Asia/Singapore"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Rate-limit counters and release progress live in the cache; two xdist workers
        # share the Redis of CELERY_BROKER_URL, so each counts under a prefix of its own.
        from django.conf import settings

        for cache in settings.CACHES.values():
            cache["KEY_PREFIX"] = f"{cache.get('KEY_PREFIX', '')}-{worker}"


def _sessions_elsewhere() -> dict[str, str]:
    """Markers whose tests need a service this session does not have, and the make target
    whose session has it (`make test` runs both after the main session)."""
    from django.conf import settings

    elsewhere = {}
    if "replica" not in settings.DATABASES:
        elsewhere["replica"] = "make test-replica (DATABASE_REPLICA_URL)"
    if not settings.DATABASE_TRANSACTION_POOLING:
        elsewhere["pooling"] = "make test-pgbouncer (DATABASE_TRANSACTION_POOLING)"
    return elsewhere


def pytest_collection_modifyitems(config, items):
    """Race tests open up to 64 connections each: under xdist they run one after another
    on one worker (`--dist loadgroup`), so two of them never exceed PostgreSQL's 100.
    Tests of a replica or of PgBouncer are left to the session that has one: deselected
    here (not skipped: they are not missing, they run there)."""
    elsewhere = _sessions_elsewhere()
    kept, deselected = [], []
    for item in items:
        if item.get_closest_marker("race"):
            item.add_marker(pytest.mark.xdist_group("race"))
        if any(item.get_closest_marker(marker) for marker in elsewhere):
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Behind PgBouncer (DATABASE_TRANSACTION_POOLING), its idle server connections to the
    test database would make the runner's DROP DATABASE fail: they are ended first."""
    yield
    from django.conf import settings

    if not settings.DATABASE_TRANSACTION_POOLING:
        return
    from django.db import connections

    with django_db_blocker.unblock(), connections["default"]._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [connections["default"].settings_dict["NAME"]],
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every test runs: a skip there is a failure that says what was missing."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI runs every test, and this one skipped: {reason}"


def pytest_report_header(config):
    lines = [f"pinned clock: "
             f"{clock.parse_moment(os.environ.get('TESTS_NOW') or clock.PINNED_NOW)}"]
    lines += [f"-m {marker} tests deselected: they run in {where}"
              for marker, where in _sessions_elsewhere().items()]
    return lines


@pytest.fixture(autouse=True, scope="session")
def _eager_celery():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture
def postgres_only():
    """Money and race tests need PostgreSQL; in CI they must never be skipped."""
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI must run this test on PostgreSQL (DATABASE_URL is not PostgreSQL)")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://…")


@pytest.fixture
def bd(db):
    return f.make_bd("bd-fixture")


@pytest.fixture
def distributor(db, bd):
    return f.make_partner(name="Dist One", bd=bd, budget="10000.00")


@pytest.fixture
def dist_admin(distributor):
    return f.make_member(distributor, "admin", username="dist-admin")


@pytest.fixture
def dist_operator(distributor):
    return f.make_member(distributor, "operator", username="dist-operator")


@pytest.fixture
def dist_viewer(distributor):
    return f.make_member(distributor, "viewer", username="dist-viewer")


@pytest.fixture
def customers(distributor):
    return f.make_accounts(distributor, 5, prefix="C-")


@pytest.fixture
def other_partner(db):
    return f.make_partner(name="Other Dist", budget="10000.00")


@pytest.fixture
def other_admin(other_partner):
    return f.make_member(other_partner, "admin", username="other-admin")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The default hasher costs about a second per user here; tests make many users (the
    browser tests' live server runs in this process, so it applies there too)."""
    settings.PASSWORD_HASHERS = f.FAST_HASHERS


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Rate limits count across tests in a shared cache; their own tests switch them on."""
    settings.RATELIMIT_ENABLED = False


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts and ends in the default language: a request's LocaleMiddleware
    leaves its language active in the thread, so a test client's Chinese page would
    otherwise make the next test's messages Chinese."""
    translation.deactivate()
    yield
    translation.deactivate()
