"""The Celery configuration the money paths rely on (settings.py and each task's options).

At-least-once delivery on Redis: a task is acknowledged only when it finishes (acks_late),
handed back when its process dies (reject_on_worker_lost), and handed out again by Redis if
still unacknowledged after the visibility timeout, which must therefore outlast any task
together with any countdown it waits out in the worker (Redis delivers ETA tasks at once
and the worker holds them unacknowledged until they are due).
"""
import ast
import inspect
import os

import pytest

import approvals.tasks
import billing.tasks
from couponplatform.celery import app

TASK_MODULES = [approvals.tasks, billing.tasks]
MONEY_TASKS = sorted(
    name for name in app.tasks
    if name == "approvals.tasks.release_request" or name.startswith("billing.tasks.")
)
OUR_TASKS = sorted(name for name in app.tasks if name.startswith(("approvals.", "billing.",
                                                                    "coupons.")))


def effective(task, option: str):
    """A task's own option, or the app's task_<option> default."""
    value = getattr(task, option, None)
    return value if value is not None else app.conf[f"task_{option}"]


def literal_countdowns() -> list[int]:
    """Every literal countdown= in the task modules (e.g. self.retry(countdown=1800))."""
    found = []
    for module in TASK_MODULES:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.keyword) and node.arg == "countdown":
                assert isinstance(node.value, ast.Constant), (
                    f"{module.__name__}: a computed countdown; bound it here")
                found.append(node.value.value)
    return found


def longest_wait(task) -> int:
    """The longest the task may sit unacknowledged in a worker before it starts: its retry
    countdown (autoretry backoff, capped by retry_backoff_max; else default_retry_delay)."""
    waits = [task.default_retry_delay or 0]
    if getattr(task, "retry_backoff", False):
        waits.append(getattr(task, "retry_backoff_max", 600))  # celery's default cap
    return max(waits)


def test_the_money_tasks_are_known():
    assert "approvals.tasks.release_request" in MONEY_TASKS
    assert {"billing.tasks.bill_post_deductions_task", "billing.tasks.daily_bills_make_task",
            "billing.tasks.account_post_outstanding_task",
            "billing.tasks.daily_bills_post_pending_task"} <= set(MONEY_TASKS)


@pytest.mark.parametrize("name", MONEY_TASKS)
def test_money_task_is_acknowledged_late_and_handed_back_when_its_worker_dies(name):
    task = app.tasks[name]
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True


def test_tasks_default_to_late_acks_and_one_prefetched_message():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    # With late acks a prefetched message waits unacknowledged behind a long task.
    assert app.conf.worker_prefetch_multiplier == 1


def test_json_is_the_only_serialisation():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.result_accept_content in (None, ["json"])
    assert conf.event_serializer == "json"
    for name in OUR_TASKS:
        assert effective(app.tasks[name], "serializer") == "json", name


def test_every_task_has_a_hard_and_a_soft_time_limit():
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit
    for name in OUR_TASKS:
        task = app.tasks[name]
        hard, soft = effective(task, "time_limit"), effective(task, "soft_time_limit")
        assert hard and soft and soft < hard, name


def test_visibility_timeout_outlasts_the_longest_task_and_countdown():
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    longest_run = max(effective(app.tasks[name], "time_limit") for name in OUR_TASKS)
    longest_countdown = max([*literal_countdowns(),
                             *(longest_wait(app.tasks[name]) for name in OUR_TASKS)])
    assert literal_countdowns(), "month_close_task retries with countdown=1800"
    assert timeout > longest_countdown + longest_run, (
        f"visibility_timeout {timeout}s: a task may wait {longest_countdown}s and then run "
        f"{longest_run}s unacknowledged; Redis would hand it to a second worker meanwhile")
    if "CELERY_VISIBILITY_TIMEOUT" not in os.environ:
        # Production keeps the hour (the worker tests shorten it in their worker's environment).
        assert timeout == 3600
