"""Thin Celery tasks of the approval workflow: ids in, one service call."""
from celery import shared_task
from django.db import OperationalError

from approvals import release


@shared_task(
    acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,),
    retry_backoff=True, max_retries=5,
)
def release_request(request_id: int) -> str:
    return release.issuance_request_release(request_id=request_id).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def release_sweep() -> list[int]:
    return release.release_sweep()
