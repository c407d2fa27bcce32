"""Services enqueue tasks by name (couponplatform/dispatch.py): every name they use is a
registered task, an unknown name is refused, and the task is published or, without a
broker, run."""
import pytest

from couponplatform import dispatch
from couponplatform.celery import app


@pytest.fixture(autouse=True)
def _tasks_registered():
    app.loader.import_default_modules()  # what a worker does at start


def test_every_name_the_services_enqueue_is_a_registered_task():
    assert dispatch.TASKS <= set(app.tasks), sorted(dispatch.TASKS - set(app.tasks))


def test_an_unknown_task_name_is_refused():
    with pytest.raises(KeyError, match="not a task the services enqueue"):
        dispatch.enqueue("billing.tasks.no_such_task", [1])


def test_with_a_broker_the_task_is_published_by_name(monkeypatch):
    """send_task, as production publishes: nothing runs here, one message waits."""
    ran = []
    monkeypatch.setattr(app.tasks[dispatch.BILLS_POST], "run", ran.append)
    published = []
    monkeypatch.setattr(app, "send_task",
                        lambda name, args, headers: published.append((name, args)))
    app.conf.task_always_eager = False
    try:
        dispatch.enqueue(dispatch.BILLS_POST, [3, 5])
    finally:
        app.conf.task_always_eager = True  # tests/conftest.py's setting for every test
    assert published == [(dispatch.BILLS_POST, ([3, 5],))]
    assert ran == []


def test_without_a_broker_the_task_runs_here(monkeypatch):
    """task_always_eager (the embedded mode, the tests): the task runs at once."""
    ran = []
    monkeypatch.setattr(app.tasks[dispatch.BILLS_POST], "run", ran.append)
    dispatch.enqueue(dispatch.BILLS_POST, [3, 5])
    assert ran == [[3, 5]]
