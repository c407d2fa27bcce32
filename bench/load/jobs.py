"""The money work the load runs beside the pages, started as production starts it and
timed until it is done: a BD approves the 10,000-account request (its release runs on a
worker), and the day's billing run is enqueued by name as beat enqueues it (the bills are
made, then posted in batches, on the workers). After a run: the ledger check and the
accounting of every coupon, bill and deduction."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, Q, Sum

from approvals.services import approval_approve
from billing.ledger import ledger_check
from billing.models import DailyBill, Deduction
from couponplatform.celery import app as celery_app
from coupons.models import Coupon, IssuanceRequest

BILLING_TASK = "billing.tasks.daily_bills_make_task"


@dataclass
class Job:
    name: str
    started: float
    done: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.done is None else self.done - self.started


def _fresh() -> None:
    """Each poll reads the latest commit (autocommit: a new snapshot per statement)."""
    if connection.in_atomic_block:
        raise RuntimeError("jobs poll outside transactions")


def release_start(*, request_id: int, bd_username: str) -> Job:
    bd = get_user_model().objects.get(username=bd_username)
    job = Job("release", time.perf_counter())
    approval_approve(request_id=request_id, acting_user=bd)
    return job


def release_done(request_id: int) -> bool:
    _fresh()
    return IssuanceRequest.objects.filter(
        pk=request_id, status=IssuanceRequest.Status.ISSUED).exists()


def billing_start(*, day: str) -> Job:
    job = Job("billing", time.perf_counter())
    celery_app.send_task(BILLING_TASK, args=[day])
    return job


def billing_progress(day: str, expected: int) -> tuple[int, int]:
    """(bills made, bills posted) of the day."""
    _fresh()
    row = DailyBill.objects.filter(date=dt.date.fromisoformat(day)).aggregate(
        made=Count("pk"), posted=Count("pk", filter=Q(posted_at__isnull=False)))
    return row["made"], row["posted"]


def billing_done(day: str, expected: int) -> bool:
    made, posted = billing_progress(day, expected)
    return made >= expected and posted >= expected


def wait(jobs: dict[str, tuple[Job, callable]], *, timeout: float, interval: float = 0.1,
         on_poll=None) -> None:
    """Poll each job's done() until all are done; time each at its first done poll."""
    deadline = time.perf_counter() + timeout
    while any(job.done is None for job, _done in jobs.values()):
        for job, done in jobs.values():
            if job.done is None and done():
                job.done = time.perf_counter()
        if on_poll is not None:
            on_poll()
        if time.perf_counter() > deadline:
            late = [name for name, (job, _d) in jobs.items() if job.done is None]
            raise TimeoutError(f"not done after {timeout:.0f} s: {', '.join(late)}")
        time.sleep(interval)


def settled() -> dict[str, int]:
    """What is still in flight: requests approved but not released, bills not posted,
    requests marked as waiting for their postings."""
    _fresh()
    return {
        "approved, not released": IssuanceRequest.objects.filter(
            status=IssuanceRequest.Status.APPROVED).count(),
        "bills not posted": DailyBill.objects.filter(posted_at__isnull=True).count(),
    }


def accounting(manifest: dict) -> dict:
    """Every coupon and deduction accounted for: each issued request holds exactly its
    recipients' coupons and no other request holds any; the run's release and billing day
    add up; nothing is left in flight; and the ledger check finds nothing."""
    _fresh()
    mismatched = IssuanceRequest.objects.annotate(n=Count("coupons")).filter(
        (Q(status=IssuanceRequest.Status.ISSUED) & ~Q(n=F("recipient_count")))
        | (~Q(status=IssuanceRequest.Status.ISSUED) & ~Q(n=0))).count()
    out = {"requests whose coupons ≠ their recipients": mismatched, **settled()}
    for label, request_id in zip(("alone", "under load"), manifest["release_requests"],
                                 strict=True):
        row = Coupon.objects.filter(request_id=request_id).aggregate(n=Count("pk"),
                                                                     total=Sum("amount"))
        out[f"release {label}: coupons"] = row["n"]
        out[f"release {label}: amount"] = str(row["total"] or 0)
    for label, day in zip(("alone", "under load"), manifest["billing_days"], strict=True):
        made, posted = billing_progress(day, 0)
        row = Deduction.objects.filter(bill_date=dt.date.fromisoformat(day),
                                       sub_account__partner_id=manifest["partners"]["billing"]
                                       ).aggregate(n=Count("pk"), total=Sum("amount"))
        out[f"billing {label}: bills posted"] = posted
        out[f"billing {label}: deductions"] = row["n"]
        out[f"billing {label}: deducted"] = str(row["total"] or 0)
    start = time.perf_counter()
    found = ledger_check()
    out["ledger discrepancies"] = len(found)
    out["_ledger_seconds"] = round(time.perf_counter() - start, 1)
    out["_ledger_first"] = [str(d) for d in found[:5]]
    return out

