"""Where a read goes: the primary, or the streaming replica for the heavy read pages that
ask for it (docs/ARCHITECTURE.md, "The replica"; docs/SCALING.md).

Nothing reads the replica unless a selector binds its queryset to `read_alias()`, the one
decision: the replica when one is configured (DATABASE_REPLICA_URL) and answers within
REPLICA_MAX_LAG_SECONDS of the primary, the read is outside any transaction on the
primary, the request is a GET or HEAD, and its user has not written in the last
REPLICA_STICKY_SECONDS; otherwise the primary. Writes always go to the primary.
"""
import contextvars
import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA = "replica"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
logger = logging.getLogger(__name__)

# The request being served on this thread, set by PrimaryAfterWriteMiddleware.
_request = contextvars.ContextVar("couponplatform_request", default=None)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def _sticky_key(user_id) -> str:
    return f"primary-after-write:{user_id}"


def primary_after_write_mark(*, user_id) -> None:
    """The user just wrote: their reads go to the primary for REPLICA_STICKY_SECONDS. By
    then a replica that is read at all has their write (settings.py holds the sticky time
    above the lag allowed plus the time between looks at it)."""
    try:
        cache.set(_sticky_key(user_id), 1, settings.REPLICA_STICKY_SECONDS)
    except Exception:  # noqa: BLE001 - the cache down must not fail the write's response
        logger.warning("could not mark user %s as having written", user_id, exc_info=True)


def _wrote_recently(user_id) -> bool:
    try:
        return cache.get(_sticky_key(user_id)) is not None
    except Exception:  # noqa: BLE001 - unknown: read the primary, which is never stale
        return True


# The replica's health as this process last saw it: (checked at, usable).
_health = {"checked": float("-inf"), "usable": False}
_health_lock = threading.Lock()
# Seconds the replica is behind: 0 when it has replayed all it received, else since the
# last transaction it replayed.
LAG_SQL = """SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                    ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"""


def replica_usable() -> bool:
    """The replica answers and lags at most REPLICA_MAX_LAG_SECONDS; looked at once every
    REPLICA_CHECK_SECONDS per process. A replica down or far behind sends the heavy reads
    to the primary instead of failing or showing old figures."""
    now = time.monotonic()
    if now - _health["checked"] < settings.REPLICA_CHECK_SECONDS:
        return _health["usable"]
    with _health_lock:
        if now - _health["checked"] < settings.REPLICA_CHECK_SECONDS:
            return _health["usable"]
        try:
            with connections[REPLICA].cursor() as cursor:
                cursor.execute(LAG_SQL)
                lag = cursor.fetchone()[0]
            usable = lag is not None and float(lag) <= settings.REPLICA_MAX_LAG_SECONDS
            if not usable:
                logger.warning("replica %s s behind: heavy reads go to the primary", lag)
        except DatabaseError:
            logger.warning("replica unreachable: heavy reads go to the primary", exc_info=True)
            connections[REPLICA].close()
            usable = False
        _health.update(checked=time.monotonic(), usable=usable)
    return usable


def read_alias() -> str:
    """The database a heavy read (Coupon Usage's list, totals, chart and exports; reports)
    may go to now: REPLICA or the primary. The one place that decides."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    # Inside a transaction a read must see the transaction's own writes, and may be the
    # read a lock or a write depends on.
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    request = _request.get()
    if request is not None:
        if request.method not in READ_METHODS:
            return DEFAULT_DB_ALIAS
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and _wrote_recently(user.pk):
            return DEFAULT_DB_ALIAS
    return REPLICA if replica_usable() else DEFAULT_DB_ALIAS


class PrimaryReplicaRouter:
    """Every write, and every read no selector bound to the replica, goes to the primary.

    Even a row read from the replica reads its relations (a lazy `coupon.partner`, a
    prefetch) and saves on the primary, not on its own database as Django would by
    default: a service handed such a row checks permissions, locks and writes on the
    primary. The heavy selectors bring the relations they show along by select_related.
    """

    def db_for_read(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, copied: a row of either is the same row

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica gets the schema by streaming


class PrimaryAfterWriteMiddleware:
    """Makes the request known to `read_alias`, and after a request that may have written
    (any method but GET, HEAD, OPTIONS) by a signed-in user, sends that user's reads to the
    primary for a few seconds. After AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        if request.method not in READ_METHODS and replica_configured():
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                primary_after_write_mark(user_id=user.pk)
        return response
