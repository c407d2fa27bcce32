"""The API's beat task: old idempotency records go."""
from celery import shared_task

from api.idempotency import idempotency_purge


@shared_task
def idempotency_purge_task() -> int:
    return idempotency_purge()
