"""Enqueue Celery tasks by name, after the transaction commits (as Zulip's
`queue_event_on_commit`): services never import a tasks module, so the tasks, which call
the services, stay above them and no import runs in a circle.

Every task a service may enqueue is named in TASKS; a test checks each one is registered.
"""
from django.db import transaction

from couponplatform import logs
from couponplatform.celery import app

BILLS_POST = "billing.tasks.bills_post_task"
ACCOUNTS_POST_OUTSTANDING = "billing.tasks.accounts_post_outstanding_batch_task"
REQUEST_RELEASE = "approvals.tasks.release_request"
NOTIFY_BD_PENDING = "approvals.tasks.notify_bd_pending_task"
NOTIFY_PARTNER = "approvals.tasks.notify_partner_task"
WEBHOOK_DELIVER = "api.tasks.webhook_deliver_task"
TASKS = frozenset({BILLS_POST, ACCOUNTS_POST_OUTSTANDING, REQUEST_RELEASE, NOTIFY_BD_PENDING,
                   NOTIFY_PARTNER, WEBHOOK_DELIVER})


def enqueue(name: str, *args) -> None:
    """Publish the task `name` with `args` (ids: tasks take ids, never rows)."""
    if name not in TASKS:
        raise KeyError(f"{name} is not a task the services enqueue (couponplatform/dispatch.py)")
    if app.conf.task_always_eager:
        # send_task ignores task_always_eager. Without a broker (the embedded mode, the
        # tests) the task runs here and now, as .delay() runs it.
        if name not in app.tasks:
            app.loader.import_default_modules()  # the apps' tasks modules, by autodiscovery
        app.tasks[name].apply_async(args=args)
        return
    # The request id goes along, so the worker's log lines and audit rows name the request
    # that asked for the work (couponplatform/logs.py).
    request_id = logs.current_request_id()
    app.send_task(name, args=args, headers={logs.TASK_HEADER: request_id} if request_id else None)


def enqueue_on_commit(name: str, *args) -> None:
    """`enqueue` once the current transaction commits, so the task never sees uncommitted
    rows. Robust: a broker outage must not fail the caller, whose work is committed and
    which a sweeper finds later (docs/ARCHITECTURE.md, "Work that must not be lost")."""
    # A lambda, not functools.partial: Django logs a robust callback's failure by its
    # __qualname__, which a partial lacks (the AttributeError would escape).
    transaction.on_commit(lambda: enqueue(name, *args), robust=True)
