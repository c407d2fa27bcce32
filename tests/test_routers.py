"""Where reads go (couponplatform/routers.py), decided without a replica running: the one
function `read_alias`, the router and the primary-after-write mark. The same against a
real streaming replica is tests/replica/test_replica.py."""
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connections
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import Partner
from billing import selectors
from couponplatform import routers
from couponplatform.db import keyset_iterate
from coupons.models import Coupon
from tests import factories as f

REPLICA, PRIMARY = routers.REPLICA, "default"


@pytest.fixture
def replica_on(monkeypatch):
    """As if DATABASE_REPLICA_URL were set and the replica healthy (no query is made: only
    the alias is decided)."""
    monkeypatch.setattr(routers, "replica_configured", lambda: True)
    monkeypatch.setattr(routers, "replica_usable", lambda: True)


class User:
    def __init__(self, pk):
        self.pk, self.is_authenticated = pk, True


def in_request(method: str, user, call):
    """`call()` inside a request of `method` by `user`, through the middleware; returns
    what it returned."""
    seen = {}

    def view(request):
        seen["value"] = call()
        return HttpResponse()

    request = getattr(RequestFactory(), method.lower())("/coupons/usage/")
    request.user = user
    routers.PrimaryAfterWriteMiddleware(view)(request)
    return seen["value"]


def test_without_a_replica_every_read_is_the_primarys():
    assert routers.read_alias() == PRIMARY


def in_transaction():
    """As inside transaction.atomic() on the primary (tests/replica opens real ones)."""
    return mock.patch.object(connections[PRIMARY], "in_atomic_block", True)


def test_outside_a_transaction_a_heavy_read_goes_to_the_replica(replica_on):
    assert routers.read_alias() == REPLICA


def test_inside_a_transaction_every_read_is_the_primarys(replica_on):
    with in_transaction():
        assert routers.read_alias() == PRIMARY


def test_the_usage_selectors_bind_their_querysets_to_the_decided_database(replica_on):
    partner = Partner(pk=1)  # no query is made
    coupons = selectors.coupon_usage_list(partner=partner)
    assert coupons.db == REPLICA
    assert coupons.filter(status="available").db == REPLICA  # what the filters make of it
    with in_transaction():
        assert selectors.coupon_usage_list(partner=partner).db == PRIMARY


def test_a_row_read_from_the_replica_reads_its_relations_and_writes_on_the_primary():
    router = routers.PrimaryReplicaRouter()
    coupon = Coupon()
    coupon._state.db = REPLICA  # as if read from the replica
    assert router.db_for_read(Partner, instance=coupon) == PRIMARY
    assert router.db_for_write(Coupon, instance=coupon) == PRIMARY
    assert router.db_for_read(Coupon) == PRIMARY  # a read no selector bound
    assert router.allow_migrate(PRIMARY, "coupons") is True
    assert router.allow_migrate(REPLICA, "coupons") is False


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_request_that_may_write_reads_the_primary(replica_on, method):
    assert in_request(method, AnonymousUser(), routers.read_alias) == PRIMARY


def test_after_a_users_write_their_reads_go_to_the_primary_for_a_while(replica_on, settings):
    settings.REPLICA_STICKY_SECONDS = 30
    writer, other = User(10_001), User(10_002)
    cache.delete_many([routers._sticky_key(10_001), routers._sticky_key(10_002)])
    assert in_request("GET", writer, routers.read_alias) == REPLICA
    in_request("POST", writer, lambda: None)
    assert in_request("GET", writer, routers.read_alias) == PRIMARY
    assert in_request("GET", other, routers.read_alias) == REPLICA  # only the writer
    assert in_request("GET", AnonymousUser(), routers.read_alias) == REPLICA
    cache.delete(routers._sticky_key(10_001))  # the mark expired
    assert in_request("GET", writer, routers.read_alias) == REPLICA


def test_an_unreadable_mark_reads_the_primary(replica_on, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    in_request("POST", User(10_003), lambda: None)  # the mark's failure fails nothing
    assert in_request("GET", User(10_003), routers.read_alias) == PRIMARY


@pytest.mark.django_db
def test_keyset_paging_returns_every_row_once_in_order_across_ties(customers):
    moment = timezone.now()
    made = [f.make_coupon(customers[i % 3], released_at=moment - timedelta(hours=i // 4))
            for i in range(11)]  # runs of 4 coupons released at the same moment
    queryset = Coupon.objects.filter(pk__in=[c.pk for c in made])
    expected = list(queryset.order_by("-released_at", "-pk"))
    for size in (1, 2, 3, 4, 5, 11, 50):
        assert list(keyset_iterate(queryset, key="released_at", size=size)) == expected
    assert list(keyset_iterate(queryset.none(), key="released_at")) == []


class FakeReplica:
    """The replica's connection as replica_usable meets it: a lag, or an error."""

    def __init__(self, lag=None, error: Exception | None = None):
        self.lag, self.error, self.queries, self.closed = lag, error, 0, False

    def cursor(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql):
        self.queries += 1
        if self.error:
            raise self.error

    def fetchone(self):
        return (self.lag,)

    def close(self):
        self.closed = True


@pytest.fixture
def fresh_health(monkeypatch, settings):
    settings.REPLICA_MAX_LAG_SECONDS, settings.REPLICA_CHECK_SECONDS = 30, 5
    monkeypatch.setitem(routers._health, "checked", float("-inf"))

    def use(replica: FakeReplica) -> FakeReplica:
        monkeypatch.setattr(routers, "connections", {REPLICA: replica})
        return replica

    return use


@pytest.mark.parametrize(("lag", "usable"), [(0, True), (29.9, True), (30.5, False),
                                             (None, False)])
def test_a_replica_further_behind_than_the_limit_is_not_read(fresh_health, lag, usable):
    fresh_health(FakeReplica(lag=lag))
    assert routers.replica_usable() is usable


def test_an_unreachable_replica_is_not_read_and_its_connection_is_dropped(fresh_health):
    from django.db import OperationalError

    replica = fresh_health(FakeReplica(error=OperationalError("connection refused")))
    assert routers.replica_usable() is False
    assert replica.closed


def test_the_replica_is_looked_at_once_per_check_interval(fresh_health, monkeypatch):
    replica = fresh_health(FakeReplica(lag=0))
    clock = iter([100.0, 100.0, 103.0, 106.0, 106.0])
    monkeypatch.setattr(routers.time, "monotonic", lambda: next(clock))
    assert routers.replica_usable() and routers.replica_usable() and routers.replica_usable()
    assert replica.queries == 2  # at 100 s and at 106 s, not at 103 s
