"""The worker tests' producer: `.delay()` inside producing_to() goes to the given broker, even
where CELERY_BROKER_URL is set (CI), which Celery reads before its configuration. No Redis
needed: nothing is published, connections are made lazily."""
import os

from couponplatform.celery import app
from tests.integration.processes import producing_to

CI_BROKER = "redis://127.0.0.1:6379/0"
RUN_BROKER = "redis://127.0.0.1:16379/0"


def publishes_to() -> str:
    """Where `.delay()` in this process would publish."""
    conn = app.connection_for_write()
    return f"{conn.transport_cls}://{conn.hostname}:{conn.port}/{conn.virtual_host}"


def test_producing_to_publishes_to_its_broker_whatever_the_environment_says(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", CI_BROKER)
    eager = app.conf.task_always_eager

    with producing_to(RUN_BROKER, "a-queue"):
        assert publishes_to() == RUN_BROKER
        assert app.amqp.default_queue.name == "a-queue"
        assert app.conf.task_always_eager is False

    assert os.environ["CELERY_BROKER_URL"] == CI_BROKER
    assert publishes_to() == CI_BROKER
    assert app.conf.task_always_eager == eager
