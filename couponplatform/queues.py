"""Which Celery queue each task goes to: the one table of routes (docs/DEPLOY.md says which
workers consume which queue).

Each kind of work waits only behind its own kind: a 10,000-account release never waits
behind a billing run's postings, a month close or a mail to send.
"""
RELEASE = "release"  # releasing approved requests: the coupons a partner waits for
POSTING = "posting"  # deductions against bills: the billing run's batches, released coupons'
NOTIFICATIONS = "notifications"  # mail to BDs and partners, webhooks to partners' systems
DEFAULT = "default"  # the scheduled jobs: making bills, expiry, month close, statistics

QUEUES = (RELEASE, POSTING, NOTIFICATIONS, DEFAULT)

ROUTES = {
    "approvals.tasks.release_request": RELEASE,
    "approvals.tasks.release_sweep": RELEASE,
    "billing.tasks.bills_post_task": POSTING,
    "billing.tasks.accounts_post_outstanding_batch_task": POSTING,
    "billing.tasks.bill_post_deductions_task": POSTING,
    "billing.tasks.account_post_outstanding_task": POSTING,
    "billing.tasks.daily_bills_post_pending_task": POSTING,
    "approvals.tasks.notify_bd_pending_task": NOTIFICATIONS,
    "approvals.tasks.notify_partner_task": NOTIFICATIONS,
    "api.tasks.webhook_deliver_task": NOTIFICATIONS,
    "api.tasks.webhook_sweep_task": NOTIFICATIONS,
    "billing.tasks.daily_bills_make_task": DEFAULT,
    "billing.tasks.month_close_task": DEFAULT,
    "billing.tasks.coupons_expire_task": DEFAULT,
    "billing.tasks.coupon_stats_compact_task": DEFAULT,
    "api.tasks.idempotency_purge_task": DEFAULT,
}


def task_routes(one_queue: str = "") -> dict[str, dict[str, str]]:
    """Celery's task_routes. With `one_queue` (CELERY_ONE_QUEUE: the worker tests, each run
    on a queue of its own) there are no routes and every task goes to that queue."""
    if one_queue:
        return {}
    return {name: {"queue": queue} for name, queue in ROUTES.items()}
