"""The replica tests' database: the runner's test database, read on the primary as
`default` and on the streaming replica (deploy/pg-replica/setup.sh) as `replica`.

The runner makes the test database on the primary only (the replica's TEST MIRROR, in
couponplatform/settings.py) and would point `replica` at the primary; here it is pointed at
the same database name on the replica's server, which streams it: pg_basebackup copied the
whole cluster, so a database made on the primary later appears on the replica too. Rows a
test commits reach the replica once it has replayed the primary's WAL up to the commit:
`replica_caught_up` waits for that.
"""
import os
import time

import dj_database_url
import pytest
from django.db import DatabaseError, connections

REPLICA = "replica"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from django.conf import settings

    if REPLICA not in settings.DATABASES:
        yield
        return
    server = dj_database_url.parse(os.environ["DATABASE_REPLICA_URL"])
    primary = connections["default"].settings_dict
    replica = connections[REPLICA]
    replica.close()
    replica.settings_dict = {
        **primary,
        **{key: server[key] for key in ("HOST", "PORT", "USER", "PASSWORD")},
        "NAME": primary["NAME"],
        # Still a mirror: the test case neither flushes it nor wraps it in a transaction.
        "TEST": {**primary["TEST"], "MIRROR": "default"},
    }
    with django_db_blocker.unblock():
        replica_caught_up(timeout=60)  # the CREATE DATABASE and the migrations
    yield
    replica.close()


def primary_lsn() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def replica_caught_up(timeout: float = 30) -> None:
    """Wait until the replica has replayed every commit the primary made so far."""
    target = primary_lsn()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connections[REPLICA].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
                if cursor.fetchone()[0]:
                    return
        except DatabaseError:
            connections[REPLICA].close()  # the test database is not on it yet
        if time.monotonic() > deadline:
            raise AssertionError(f"the replica did not replay up to {target} in {timeout}s")
        time.sleep(0.05)
