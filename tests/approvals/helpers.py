"""Helpers of the approvals tests: a partner's budget, a request's audit rows, and calls
run at once on their own connections. (Requests in every status and "nothing written" are
in tests/factories.py.)"""
import threading

from django.db import connection, connections

from accounts.models import PlatformBudget
from audit.models import AuditLog


def budget_of(partner, currency="USD") -> PlatformBudget:
    return PlatformBudget.objects.get(partner=partner, currency=currency)


def audit_rows(request) -> list[AuditLog]:
    return list(
        AuditLog.objects.filter(object_type="coupons.IssuanceRequest", object_id=str(request.pk))
        .order_by("pk")
    )


def at_once(*calls, timeout: float = 30) -> list:
    """Run each call in its own thread on its own database connection, released together by
    a barrier; returns what each returned or the exception it raised, in order.

    A thread still running after `timeout` fails the test: that is a deadlock or a lost
    wake-up, not a slow machine.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        try:
            connection.ensure_connection()  # connect first, so the barrier releases work only
            barrier.wait(timeout=timeout)
            outcomes[i] = call()
        except BaseException as exc:  # noqa: B036 — the test inspects whatever was raised
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call), daemon=True)
               for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not hung, f"threads {hung} did not finish in {timeout}s: a deadlock?"
    return outcomes
