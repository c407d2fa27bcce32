"""Thin Celery tasks of billing: ids in, one service call, safe to run twice.

Money tasks are acknowledged only once they finish (acks_late) and handed back to the broker
if the worker dies (reject_on_worker_lost), so a crash means a redelivery, and the services
make a redelivery harmless. Deadlocks, serialization failures and lost connections arrive
as OperationalError and are retried with backoff.
"""
import logging
from datetime import date, timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing import coupon_status, daily_bills, month_close, posting, stats, sweeps
from couponplatform.exceptions import ApplicationError

logger = logging.getLogger(__name__)

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
def bills_post_task(bill_ids: list[int]) -> int:
    """Post a batch of daily bills in one transaction (billing/posting.POST_BATCH a task)."""
    return _batch_or_one_by_one(
        bill_ids, lambda ids: posting.bills_post(bill_ids=ids),
        lambda one: posting.bills_post(bill_ids=[one]), "daily bill",
    )


@shared_task(**MONEY_TASK)
def accounts_post_outstanding_batch_task(sub_account_ids: list[int]) -> int:
    """Post the outstanding bills of a batch of accounts in one transaction."""
    return _batch_or_one_by_one(
        sub_account_ids, lambda ids: posting.accounts_post_outstanding(sub_account_ids=ids),
        lambda one: posting.account_post_outstanding(sub_account_id=one), "account",
    )


def _batch_or_one_by_one(ids, post_batch, post_one, what: str) -> int:
    """The batch in one transaction; if it fails for a reason a retry would not cure, each
    item alone, so one bad bill or account does not hold back the others. Lost
    connections, deadlocks and serialization failures (OperationalError) are retried whole
    (the posting is idempotent)."""
    try:
        return post_batch(ids).deductions
    except OperationalError:
        raise
    except Exception:
        logger.exception("Posting a batch of %d %ss failed; posting them one by one",
                         len(ids), what)
    deductions, failed = 0, []
    for one in ids:
        try:
            deductions += post_one(one).deductions
        except OperationalError:
            raise
        except Exception:
            logger.exception("Posting %s #%s failed", what, one)
            failed.append(one)
    if failed:
        raise ApplicationError(
            f"Posting failed for {len(failed)} {what}(s): {', '.join(map(str, failed[:20]))}"
            + (" …" if len(failed) > 20 else "") + "; the others were posted.",
        )
    return deductions


# One bill or one account a task: what was published before batches, kept so messages
# already in the broker when batching was deployed still run. Nothing enqueues them now.
# Remove them in the first release after the one that brought batches: by then no broker
# holds such a message (unacknowledged ones come back within the visibility timeout, an
# hour, and a message lost meanwhile is covered by the sweepers, billing/sweeps.py); with
# them go their lines in tests/billing/test_posting.py and tests/integration/
# test_celery_config.py, and bench/worker.py's one-bill rounds move to bills_post_task.
@shared_task(**MONEY_TASK)
def bill_post_deductions_task(bill_id: int) -> int:
    return posting.bill_post_deductions(bill_id=bill_id).deductions


@shared_task(**MONEY_TASK)
def account_post_outstanding_task(sub_account_id: int) -> int:
    return posting.account_post_outstanding(sub_account_id=sub_account_id).deductions


@shared_task(**MONEY_TASK)
def daily_bills_make_task(bill_date: str | None = None) -> int:
    """Bill one day (ISO date); by default yesterday in the platform's time zone."""
    day = date.fromisoformat(bill_date) if bill_date else timezone.localdate() - timedelta(days=1)
    return daily_bills.daily_bills_make(bill_date=day).count


@shared_task(bind=True, **MONEY_TASK)
def month_close_task(self, month: str | None = None) -> int:
    """Close one month (YYYY-MM); by default the previous one. While postings of the month
    are still running the close is refused, so it tries again later."""
    if month is None:
        month = f"{timezone.localdate().replace(day=1) - timedelta(days=1):%Y-%m}"
    try:
        return month_close.month_close(month=month).bill_count
    except ApplicationError as exc:
        raise self.retry(exc=exc, countdown=1800, max_retries=24) from exc


@shared_task(**MONEY_TASK)
def coupons_expire_task() -> int:
    return coupon_status.coupons_expire(today=timezone.localdate())


@shared_task(**MONEY_TASK)
def daily_bills_post_pending_task() -> int:
    # Both sweeps of postings whose task was lost: unposted bills, and released coupons
    # whose accounts' outstanding bills were never offered to them.
    return sweeps.daily_bills_post_pending() + sweeps.released_postings_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def coupon_stats_compact_task() -> str:
    """Fold the usage statistics' delta rows (billing/stats.py); each minute by beat. Safe
    to run twice or at once (an advisory lock); a lost run leaves the figures right, only
    more rows to sum, and the next run folds them."""
    return str(stats.coupon_stats_compact())
