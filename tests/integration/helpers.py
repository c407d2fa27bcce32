"""Scenarios of the worker tests, on tests.factories' Shop (a partner with many accounts and
a template): a released request, a day of usage; the checks that nothing was lost or done
twice; and transactions held open on a connection of their own, to stop a worker's task at
a chosen point inside its transaction."""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, connections, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import PlatformBudget, SubAccount
from approvals import release as approvals
from audit.models import AuditLog
from billing.ledger import ledger_check
from billing.models import DailyBill, Deduction
from couponplatform.celery import app as celery_app
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from tests import factories as f
from tests.factories import Shop, import_usage

# Each account's day: ecs 30.00 then oss 40.00; its one 50.00 coupon (the shop's template,
# tests.factories.make_shop) pays 30.00 + 20.00.
USAGE = (("ecs", Decimal("30.00")), ("oss", Decimal("40.00")))
PAYS = f.SHOP_FACE_VALUE
Status = IssuanceRequest.Status


@contextmanager
def eager():
    """Tasks run in this process for a moment (test setup that needs no worker)."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = old


def release_now(shop: Shop, accounts: list[SubAccount] | None = None) -> IssuanceRequest:
    """Setup: the accounts hold one released coupon each, the follow-up work done in-process."""
    with eager():
        request = shop.submit(accounts)
        shop.approve(request)
        approvals.issuance_request_release(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == Status.ISSUED
    return request


def yesterday() -> date:
    return timezone.localdate() - timedelta(days=1)


def usage_for(accounts: list[SubAccount], day: date) -> None:
    f.make_product("ecs")
    f.make_product("oss")
    import_usage([(a, day, code, amount) for a in accounts for code, amount in USAGE])


# ---------------------------------------------------------------------------------------
# What the end state must be


def assert_ledger_clean() -> None:
    found = ledger_check()
    assert found == [], "ledger discrepancies:\n" + "\n".join(map(str, found[:20]))


def assert_released_once(shop: Shop, request: IssuanceRequest) -> None:
    """Issued, one coupon per recipient, counters and budget moved exactly once."""
    request.refresh_from_db()
    n = request.recipient_count
    assert request.status == Status.ISSUED, request.status
    coupons = Coupon.objects.filter(request=request)
    assert coupons.count() == n
    assert coupons.values("recipient").distinct().count() == n
    assert coupons.values("sub_account").distinct().count() == n
    template = CouponTemplate.objects.get(pk=shop.template.pk)
    released = Coupon.objects.filter(template=template)
    assert template.released_count == released.count()
    assert template.released_amount == released.aggregate(s=Sum("amount"))["s"]
    budget = PlatformBudget.objects.get(partner=shop.partner, currency="USD")
    borne = IssuanceRequest.objects.filter(partner=shop.partner, cost_bearer="platform")
    issued_total = borne.filter(status=Status.ISSUED).aggregate(s=Sum("total_amount"))["s"]
    assert budget.consumed == issued_total
    pending_total = borne.filter(
        status__in=[Status.PENDING, Status.APPROVED],
    ).aggregate(s=Sum("total_amount"))["s"] or Decimal("0")
    assert budget.reserved == pending_total
    assert AuditLog.objects.filter(
        object_type="coupons.IssuanceRequest", object_id=str(request.pk), action="request.issued",
    ).count() == 1


def assert_posted_once(accounts: list[SubAccount], day: date) -> None:
    """Every bill of the day posted, each account's coupon paid 30.00 + 20.00 once."""
    ids = [a.pk for a in accounts]
    bills = DailyBill.objects.filter(sub_account_id__in=ids, date=day)
    assert bills.count() == len(ids)
    assert not bills.filter(posted_at__isnull=True).exists()
    assert set(bills.values_list("deduction_amount", flat=True)) == {PAYS}
    deductions = Deduction.objects.filter(sub_account_id__in=ids, bill_date=day)
    assert deductions.count() == len(ids) * len(USAGE)
    assert deductions.aggregate(s=Sum("amount"))["s"] == PAYS * len(ids)
    per_pair = deductions.values("coupon", "line").annotate(n=Count("pk")).filter(n__gt=1)
    assert not per_pair.exists()
    coupons = Coupon.objects.filter(sub_account_id__in=ids)
    assert set(coupons.values_list("status", "balance").distinct()) == {
        (Coupon.Status.USED_UP, Decimal("0.00")),
    }
    assert AuditLog.objects.filter(
        action="coupon.used_up", object_type="coupons.Coupon",
        object_id__in=[str(pk) for pk in coupons.values_list("pk", flat=True)],
    ).count() == len(ids)


# ---------------------------------------------------------------------------------------
# Holding a worker's transaction at a chosen point


class HeldTransaction:
    """Runs `write` in a transaction on a database connection of its own and keeps that
    transaction open (its row locks held) until release(), which rolls it back."""

    def __init__(self, write: Callable[[], object]):
        self.write = write
        self._ready = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self.pid: int | None = None  # its server process
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
                self.write()
                self._ready.set()
                self._done.wait(120)
                transaction.set_rollback(True)
        except BaseException as exc:  # noqa: BLE001 — reported by start()
            self.error = exc
        finally:
            self._ready.set()
            connections.close_all()

    def start(self) -> HeldTransaction:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def release(self) -> None:
        self._done.set()
        self._thread.join(30)


def backend_waiting(statement: str = "", *, blocked_by: HeldTransaction | None = None,
                    ) -> int | None:
    """The pid of a server process of the test database that waits on a lock (a worker's
    task, stopped by a HeldTransaction) while running a statement containing `statement`,
    and, given `blocked_by`, waiting for that transaction.

    pg_stat_activity keeps only the first 1 kB of a statement (track_activity_query_size),
    and a set-based write starts with its rows (`WITH v (…) AS (VALUES …) UPDATE t …`): a
    batch's is told by the transaction it waits for, not by its text."""
    sql = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
           "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE %s")
    params: list = ["%" + statement.replace("%", r"\%").replace("_", r"\_") + "%"]
    if blocked_by is not None:
        sql += " AND %s = ANY(pg_blocking_pids(pid))"
        params.append(blocked_by.pid)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY backend_start", params)
        row = cursor.fetchone()
    return row[0] if row else None


def backend_gone(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is None
