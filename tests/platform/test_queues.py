"""Each task goes to the queue of its kind (couponplatform/queues.py), so a release never
waits behind a billing run; every queue has a worker in the Procfile; the worker tests'
CELERY_ONE_QUEUE puts everything on one queue."""
import re
import shlex
from pathlib import Path

import pytest

from couponplatform import dispatch, queues
from couponplatform.celery import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _tasks_registered():
    app.loader.import_default_modules()  # what a worker does at start


def our_tasks() -> list[str]:
    return sorted(name for name in app.tasks if name.startswith(("approvals.", "billing.",
                                                                  "coupons.", "accounts.", "api.")))


def queue_of(name: str) -> str:
    """The queue Celery's router picks for a task published by name (send_task, .delay)."""
    return app.amqp.router.route({}, name)["queue"].name


@pytest.mark.parametrize("name", sorted(queues.ROUTES))
def test_each_task_routes_to_its_queue(name):
    assert name in app.tasks, f"{name} in ROUTES is not a registered task"
    assert queue_of(name) == queues.ROUTES[name]


def test_every_task_of_ours_has_a_route():
    """A new task must be given a queue, not fall silently onto the default one."""
    assert set(our_tasks()) == set(queues.ROUTES), set(our_tasks()) ^ set(queues.ROUTES)


def test_the_kinds_of_work_are_on_their_queues():
    assert queue_of(dispatch.REQUEST_RELEASE) == "release"
    assert queue_of("approvals.tasks.release_sweep") == "release"
    assert {queue_of(dispatch.BILLS_POST), queue_of(dispatch.ACCOUNTS_POST_OUTSTANDING),
            queue_of("billing.tasks.daily_bills_post_pending_task")} == {"posting"}
    assert {queue_of(dispatch.NOTIFY_PARTNER), queue_of(dispatch.NOTIFY_BD_PENDING),
            queue_of(dispatch.WEBHOOK_DELIVER), queue_of("api.tasks.webhook_sweep_task")} == {
        "notifications"}
    assert queue_of("billing.tasks.daily_bills_make_task") == "default"


def test_every_scheduled_task_is_routed():
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in queues.ROUTES, entry["task"]


def test_an_unrouted_name_goes_to_the_default_queue():
    assert app.conf.task_default_queue == "default"
    assert queue_of("somebody.elses.task") == "default"


def test_one_queue_means_no_routes():
    assert queues.task_routes("cp-itest-1") == {}
    assert queues.task_routes("") == {name: {"queue": q} for name, q in queues.ROUTES.items()}


def consumed(command: str) -> set[str]:
    args = shlex.split(command)
    return set(args[args.index("-Q") + 1].split(",")) if "-Q" in args else set()


def test_the_procfile_runs_a_worker_for_every_queue_and_one_beat():
    processes = dict(line.split(":", 1) for line in
                     (ROOT / "deploy" / "Procfile").read_text().splitlines()
                     if line.strip() and not line.startswith("#"))
    assert set().union(*(consumed(cmd) for cmd in processes.values())) == set(queues.QUEUES)
    assert sum(" beat " in cmd for cmd in processes.values()) == 1
    assert "gunicorn -c deploy/gunicorn.conf.py" in processes["web"]
    # The money workers prefetch one message at a time (settings) and keep running under
    # honcho, which would stop everything when one exits.
    for name, cmd in processes.items():
        if "celery" in cmd:
            assert cmd.strip().startswith("deploy/keep-running.sh"), name


def test_the_systemd_worker_unit_takes_its_queue_from_the_instance_name():
    unit = (ROOT / "deploy" / "systemd" / "coupons-worker@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    assert "-Q %i" in exec_start and "celery -A couponplatform worker" in exec_start
    assert re.search(r"^Restart=always$", unit, re.M)
