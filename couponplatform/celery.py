"""The Celery application; tasks are discovered in each app's tasks.py, routed to their
queues by couponplatform/queues.py (through settings.CELERY_TASK_ROUTES)."""
import os

from celery import Celery, signals

from couponplatform import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "couponplatform.settings")

app = Celery("couponplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

signals.task_prerun.connect(logs.task_started, weak=False)
signals.task_postrun.connect(logs.task_finished, weak=False)


@signals.after_setup_logger.connect(weak=False)
def _logging_as_django_configures_it(**_):
    """With LOG_FORMAT=json (production's default) the worker and beat log as the web does:
    Django's LOGGING, one JSON line an event on stdout, in place of the handlers Celery just
    set up. With text, Celery's own logging stays (the worker tests read its lines)."""
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        import logging.config

        logging.config.dictConfig(settings.LOGGING)
