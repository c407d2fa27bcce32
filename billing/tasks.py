"""Thin Celery tasks of billing: ids in, one service call, safe to run twice.

Money tasks are acknowledged only once they finish (acks_late) and handed back to the broker
if the worker dies (reject_on_worker_lost), so a crash means a redelivery, and the services
make a redelivery harmless. Deadlocks, serialization failures and lost connections arrive
as OperationalError and are retried with backoff.
"""
from datetime import date, timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing import services
from couponplatform.exceptions import ApplicationError

MONEY_TASK = dict(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)


@shared_task(**MONEY_TASK)
def bill_post_deductions_task(bill_id: int) -> int:
    return services.bill_post_deductions(bill_id=bill_id).deductions


@shared_task(**MONEY_TASK)
def account_post_outstanding_task(sub_account_id: int) -> int:
    return services.account_post_outstanding(sub_account_id=sub_account_id).deductions


@shared_task(**MONEY_TASK)
def daily_bills_make_task(bill_date: str | None = None) -> int:
    """Bill one day (ISO date); by default yesterday in the platform's time zone."""
    day = date.fromisoformat(bill_date) if bill_date else timezone.localdate() - timedelta(days=1)
    return services.daily_bills_make(bill_date=day).count


@shared_task(bind=True, **MONEY_TASK)
def month_close_task(self, month: str | None = None) -> int:
    """Close one month (YYYY-MM); by default the previous one. While postings of the month
    are still running the close is refused, so it tries again later."""
    if month is None:
        month = f"{timezone.localdate().replace(day=1) - timedelta(days=1):%Y-%m}"
    try:
        return services.month_close(month=month).bill_count
    except ApplicationError as exc:
        raise self.retry(exc=exc, countdown=1800, max_retries=24) from exc


@shared_task(**MONEY_TASK)
def coupons_expire_task() -> int:
    return services.coupons_expire(today=timezone.localdate())


@shared_task(**MONEY_TASK)
def daily_bills_post_pending_task() -> int:
    # Both sweeps of postings whose task was lost: unposted bills, and released coupons
    # whose accounts' outstanding bills were never offered to them.
    return services.daily_bills_post_pending() + services.released_postings_sweep()
