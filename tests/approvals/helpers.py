"""Helpers of the approvals tests: running on-commit work, requests in every status, and
proving a refused action wrote nothing."""
import threading
from contextlib import contextmanager

from django.core import mail
from django.db import connection, connections

from accounts.models import PlatformBudget
from approvals import services
from approvals.models import Approval
from audit.models import AuditLog
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import coupon_template_disable
from tests import factories as f
from tests.factories import committed, deferred, run_callbacks

Status = IssuanceRequest.Status


def submit(template, user, accounts) -> IssuanceRequest:
    with committed():
        request = f.submit(template, user, accounts)
    request.refresh_from_db()
    return request


def approve(request, user) -> IssuanceRequest:
    with committed():
        services.approval_approve(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def reject(request, user, reason="Not this quarter.") -> IssuanceRequest:
    with committed():
        services.approval_reject(request_id=request.pk, acting_user=user, reason=reason)
    return IssuanceRequest.objects.get(pk=request.pk)


def cancel(request, user) -> IssuanceRequest:
    with committed():
        services.issuance_request_cancel(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def retry(request, user) -> IssuanceRequest:
    with committed():
        services.issuance_request_retry(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def withdraw(request, user) -> IssuanceRequest:
    with committed():
        services.issuance_request_withdraw(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def approve_and_fail(request, bd, partner_user) -> IssuanceRequest:
    """Approved, then the template is disabled before the release runs: failed to issue."""
    with deferred() as callbacks:
        services.approval_approve(request_id=request.pk, acting_user=bd)
    coupon_template_disable(template=request.template, acting_user=partner_user)
    run_callbacks(list(callbacks))
    return IssuanceRequest.objects.get(pk=request.pk)


def request_in(status: str, *, template, partner_user, bd, accounts) -> IssuanceRequest:
    """A request of `template` for `accounts`, brought to `status` through the services.

    "approved" is the moment between the approval's commit and its release: the release
    queued on commit is dropped.
    """
    request = submit(template, partner_user, accounts)
    if status == Status.PENDING:
        return request
    if status == Status.APPROVED:
        with deferred():
            services.approval_approve(request_id=request.pk, acting_user=bd)
        return IssuanceRequest.objects.get(pk=request.pk)
    if status == Status.ISSUED:
        return approve(request, bd)
    if status == Status.REJECTED:
        return reject(request, bd)
    if status == Status.CANCELLED:
        return cancel(request, partner_user)
    failed = approve_and_fail(request, bd, partner_user)
    if status == Status.FAILED:
        return failed
    assert status == Status.WITHDRAWN, status
    return withdraw(failed, partner_user)


def db_state() -> dict:
    """Every row an approval action could write or change, in comparable form."""
    return {
        "requests": list(
            IssuanceRequest.objects.order_by("pk").values_list(
                "pk", "status", "decided_by", "decided_at", "reason", "issued_at",
                "released_so_far",
            )
        ),
        "approvals": list(
            Approval.objects.order_by("pk").values_list("pk", "status", "decided_by", "reason")
        ),
        "recipients": list(
            IssuanceRecipient.objects.order_by("pk").values_list("pk", "holds")
        ),
        "coupons": Coupon.objects.count(),
        "templates": list(
            CouponTemplate.objects.order_by("pk").values_list(
                "pk", "status", "released_count", "released_amount",
            )
        ),
        "budgets": list(
            PlatformBudget.objects.order_by("pk").values_list(
                "pk", "amount", "reserved", "consumed",
            )
        ),
        "audit": AuditLog.objects.count(),
        "mails": len(mail.outbox),
    }


@contextmanager
def nothing_written():
    """Asserts the block leaves every request, approval, coupon, budget, audit row and the
    outbox as they were."""
    before = db_state()
    yield
    assert db_state() == before, "the refused action wrote something"


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
