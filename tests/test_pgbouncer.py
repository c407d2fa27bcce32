"""PgBouncer's transaction pooling as the app meets it (`make test-pgbouncer` runs these
with the race and money tests through it; docs/SCALING.md, "PgBouncer"): the test
database is reached through PgBouncer in transaction mode, a connection's transactions
land on whichever server connection is free, and so a server-side cursor declared in one
transaction is not there in the next one, which is why DATABASE_TRANSACTION_POOLING turns
them off; with them off, a chunked read outside a transaction works while other clients
take the server connections.
"""
from unittest import mock

import psycopg
import pytest
from django.db import ProgrammingError, connection, connections

from coupons.models import Coupon
from tests import factories as f

# Collected only through PgBouncer (tests/conftest.py deselects them elsewhere).
pytestmark = pytest.mark.pooling


def admin_console() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname="pgbouncer",
                           autocommit=True)


def backend_pid(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def raw(alias_settings: dict) -> psycopg.Connection:
    return psycopg.connect(host=alias_settings["HOST"], port=alias_settings["PORT"],
                           user=alias_settings["USER"], dbname=alias_settings["NAME"],
                           autocommit=True)


@pytest.mark.django_db(transaction=True)
def test_the_tests_reach_the_database_through_pgbouncer_in_transaction_mode():
    with admin_console() as console, console.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        columns = [c.name for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute("SHOW CONFIG")
        config = {row[0]: row[1] for row in cursor.fetchall()}
    assert config["pool_mode"] == "transaction"
    backend_pid(connection)  # this test's connection makes its pool appear
    assert connection.settings_dict["NAME"] in {row["name"] for row in rows}
    assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server_side_cursors", [False, True])
def test_a_chunked_read_outside_a_transaction_survives_other_clients_only_without_ssc(
        customers, server_side_cursors):
    """QuerySet.iterator() outside a transaction: Django declares a cursor WITH HOLD on
    the server connection PgBouncer lends it for that statement; another client then takes
    that server connection into a transaction (PgBouncer lends the last one released
    first), and the next fetch is sent to another server connection, where the cursor is
    not. With server-side cursors (ssc) off, as DATABASE_TRANSACTION_POOLING sets, the rows
    came whole."""
    made = sorted(f.make_coupon(customers[i % 5]).pk for i in range(9))
    with raw(connection.settings_dict) as other, mock.patch.dict(
            connection.settings_dict, {"DISABLE_SERVER_SIDE_CURSORS": not server_side_cursors}):
        rows = Coupon.objects.filter(pk__in=made).order_by("pk").iterator(chunk_size=3)
        first = next(rows).pk
        other.autocommit = False
        other.execute("SELECT 1")  # holds a server connection until its rollback
        try:
            if server_side_cursors:
                # Django's ProgrammingError, then psycopg's own from closing the cursor
                with pytest.raises((ProgrammingError, psycopg.errors.InvalidCursorName),
                                   match='cursor "_django_curs_.*" does not exist'):
                    list(rows)
                return
            assert [first, *(c.pk for c in rows)] == made
        finally:
            other.rollback()
            connections.close_all()
