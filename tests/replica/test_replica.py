"""The replica bar of QUALITY.md, against a real streaming replica (`make test-replica`):
Coupon Usage's list, totals, chart and exports read from the replica show what the
primary shows; no write and no locked read reaches the replica; a user sees their own
write at once however far the replica lags, while others read the replica.

Queries are captured per database alias. The replica is a hot standby, read-only: a write
or a SELECT … FOR UPDATE sent to it would fail the test with an error.
"""
import re
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import psycopg
import pytest
from django.db import connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing import coupon_status, selectors
from billing.ledger import ledger_check
from couponplatform import routers
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.replica.conftest import REPLICA, replica_caught_up

pytestmark = [
    pytest.mark.replica,
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
]

USAGE = "/coupons/usage/"
# The tables of Coupon Usage's heavy reads.
HEAVY = ("coupons_coupon", "billing_couponstat", "billing_deductionstat", "billing_deduction")
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def world(postgres_only):
    with f.fast_passwords():
        built = ph.build_world()
    replica_caught_up()
    return built


def filters(w) -> list[dict]:
    return [
        {},
        {"status": "available"},
        {"template": w.templates["welcome"].pk},
        {"cost_bearer": "platform", "status": "used_up"},
        {"released_from": f"{w.d1 - timedelta(days=3):%Y-%m-%d}",
         "released_to": f"{w.today:%Y-%m-%d}"},
        {"sub_account": "CA-"},  # a search: totals and chart summed from the coupons
        {"sort": "-amount", "per_page": 2, "page": 2},
    ]


@contextmanager
def queries():
    """The queries of the block, per alias."""
    with CaptureQueriesContext(connections["default"]) as primary, \
            CaptureQueriesContext(connections[REPLICA]) as replica:
        yield {"default": primary, REPLICA: replica}


def sql(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def reading_the_primary():
    """The same page with every heavy read on the primary: the baseline it must equal."""
    return mock.patch.object(selectors, "read_alias", return_value="default")


def page(response) -> bytes:
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return CSRF.sub(b"", body)


def assert_heavy_reads_on_the_primary(captured) -> None:
    on_primary = sql(captured["default"])
    assert any(f'"{table}"' in q for q in on_primary for table in HEAVY), on_primary


def assert_heavy_reads_on_the_replica(captured) -> None:
    on_replica, on_primary = sql(captured[REPLICA]), sql(captured["default"])
    assert on_replica, "nothing was read from the replica"
    assert all(q.lstrip().upper().startswith("SELECT") for q in on_replica), on_replica
    assert not any("FOR UPDATE" in q.upper() for q in on_replica), on_replica
    strays = [q for q in on_primary if any(f'"{table}"' in q for table in HEAVY)]
    assert not strays, f"heavy reads went to the primary: {strays}"


def test_coupon_usage_read_from_the_replica_equals_the_primarys(client, world):
    """The page (list, totals, chart) and its exports under each filter, and the
    selectors' rows, read from the replica and from the primary: the same."""
    client.force_login(world.admin)
    for params in filters(world):
        for export in (None, "csv", "xlsx"):
            if export and "page" in params:
                continue
            asked = {**params, "_export": export} if export else params
            with queries() as captured:
                # an export streams: read while its body is consumed, inside the capture
                from_replica = page(client.get(USAGE, asked))
            assert_heavy_reads_on_the_replica(captured)
            with reading_the_primary(), queries() as captured:
                from_primary = page(client.get(USAGE, asked))
            assert not sql(captured[REPLICA])
            if export == "xlsx":  # a workbook's zip carries its write time: the cells
                from_replica, from_primary = xlsx_cells(from_replica), xlsx_cells(from_primary)
            assert from_replica == from_primary, asked
    assert_selectors_equal(world)


def xlsx_cells(body: bytes):
    class Response:
        content, streaming = body, False

    return ph.xlsx_rows(Response())


def assert_selectors_equal(world) -> None:
    partner = world.partner
    lookups = {"status": "available"}
    on = {}
    for alias in ("default", REPLICA):
        with mock.patch.object(selectors, "read_alias", return_value=alias):
            coupons = selectors.coupon_usage_list(partner=partner)
            assert coupons.db == alias
            on[alias] = (
                [(c.pk, c.status, c.balance, c.used) for c in coupons.order_by("pk")],
                selectors.coupon_usage_totals(coupons),
                selectors.deductions_per_day(partner=partner, coupons=coupons,
                                             today=world.today),
                selectors.coupon_usage_totals_from_stats(partner=partner, lookups=lookups),
                selectors.deductions_per_day_from_stats(partner=partner, lookups={},
                                                        today=world.today),
            )
    assert on["default"] == on[REPLICA]
    assert on[REPLICA][0] and on[REPLICA][2]  # coupons and a chart to compare


@pytest.mark.django_db(databases=["default", REPLICA])  # nothing to commit
def test_the_replica_refuses_writes_and_locks(postgres_only):
    """So a write or a locked read routed to it would have failed the tests here."""
    s = connections[REPLICA].settings_dict
    for statement in ("UPDATE coupons_coupon SET balance = 0 WHERE id = 1",
                      "SELECT id FROM coupons_coupon WHERE id = 1 FOR UPDATE"):
        with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"],
                             dbname=s["NAME"], autocommit=True) as replica, \
                pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute(statement)


def test_no_money_write_and_no_locked_read_reaches_the_replica(client, world):
    w = world
    client.force_login(w.admin)
    b_coupon = w.coupons["b_welcome"]
    from_replica = Coupon.objects.using(REPLICA).get(pk=w.coupons["a_promo"].pk)
    with queries() as captured:
        # a void through the page, a billing run with its posting, a release with the
        # posting of its account's outstanding bills, the expiry and a month's close
        response = client.post(f"{USAGE}{b_coupon.pk}/void/", {"reason": "Wrong account"})
        assert response.status_code == 302
        ph.bill([(w.b, w.today - timedelta(days=1), "ecs", "4.00")])
        [released] = ph.issue(w.templates["voidable"], w.admin, w.bd, [w.b])
        coupon_status.coupons_expire(today=w.today + timedelta(days=40))
        # a row read from the replica, handed to a service: its permission check, lock,
        # re-read and write all go to the primary
        voided = coupon_status.coupon_void(coupon=from_replica, acting_user=w.admin,
                                           reason="Goodwill withdrawn")
        # a heavy selector asked for inside a transaction, locking: the primary's
        with transaction.atomic():
            locked = list(selectors.coupon_usage_list(partner=w.partner)
                          .select_for_update(of=("self",)).order_by("pk"))
    assert not sql(captured[REPLICA]), sql(captured[REPLICA])
    assert any("FOR UPDATE" in q for q in sql(captured["default"]))
    assert voided.status == Coupon.Status.VOIDED and released.pk and locked
    assert Coupon.objects.get(pk=b_coupon.pk).status == Coupon.Status.VOIDED
    replica_caught_up()
    assert Coupon.objects.using(REPLICA).get(pk=b_coupon.pk).status == Coupon.Status.VOIDED
    assert ledger_check() == []


STATUSES = {label for _, label in Coupon.Status.choices}


def usage_status(client, code: str) -> str:
    """The status the Coupon Usage page shows for the coupon `code` (of account B)."""
    root = ph.parse(client.get(USAGE, {"sub_account": "CB-"}))
    for row in ph.table_rows(root, table=root.find("table", cls="table-hover")):
        if any(code in cell for cell in row):
            return next(cell for cell in row if cell in STATUSES)
    raise AssertionError(f"{code} is not on the page")


@contextmanager
def replay_paused():
    """The replica receives the primary's WAL but applies none of it: it lags."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")


@pytest.fixture
def lag_allowed(settings, monkeypatch):
    """Replica lag allowed up to `seconds` (the sticky time above it, as settings.py
    requires), its health looked at afresh."""
    monkeypatch.setitem(routers._health, "checked", float("-inf"))

    def allow(seconds: float) -> None:
        settings.REPLICA_MAX_LAG_SECONDS = seconds
        settings.REPLICA_STICKY_SECONDS = seconds + settings.REPLICA_CHECK_SECONDS + 1

    return allow


def test_a_user_sees_their_own_write_at_once_while_the_replica_lags(world, lag_allowed):
    lag_allowed(300)  # a loaded machine's seconds must not make the replica unusable here
    writer, reader = Client(), Client()
    writer.force_login(world.admin)
    reader.force_login(world.viewer)
    code, pk = world.coupons["b_welcome"].code, world.coupons["b_welcome"].pk
    assert usage_status(writer, code) == usage_status(reader, code) == "Available"
    with replay_paused():
        response = writer.post(f"{USAGE}{pk}/void/", {"reason": "Wrong account"})
        assert response.status_code == 302
        with queries() as captured:
            assert usage_status(writer, code) == "Voided"  # from the primary
        assert not sql(captured[REPLICA])
        with queries() as captured:
            assert usage_status(reader, code) == "Available"  # the lagging replica
        assert sql(captured[REPLICA])
    replica_caught_up()
    assert usage_status(reader, code) == "Voided"


def test_a_replica_further_behind_than_allowed_is_not_read(client, world, lag_allowed,
                                                           settings):
    lag_allowed(0.5)
    settings.REPLICA_CHECK_SECONDS = 0  # look at every read
    client.force_login(world.viewer)
    code, pk = world.coupons["b_welcome"].code, world.coupons["b_welcome"].pk
    with replay_paused():
        coupon_status.coupon_void(coupon=Coupon.objects.get(pk=pk), acting_user=world.admin,
                                  reason="Wrong account")
        time.sleep(1)  # the replica, paused, is now a second behind the void
        with queries() as captured:
            assert usage_status(client, code) == "Voided"  # from the primary
        assert sql(captured[REPLICA]) == [routers.LAG_SQL]  # only the look at its lag
        assert_heavy_reads_on_the_primary(captured)
    replica_caught_up()
    with queries() as captured:
        assert usage_status(client, code) == "Voided"
    assert_heavy_reads_on_the_replica(captured)
