"""Thin Celery tasks of the approval workflow: ids in, one service call."""
import smtplib

from celery import shared_task
from django.db import OperationalError

from approvals import notifications, release

# A mail server that refuses or drops the connection now may take the mail later.
MAIL_TASK = dict(autoretry_for=(OSError, smtplib.SMTPException, OperationalError),
                 retry_backoff=True, retry_backoff_max=300, max_retries=6)


@shared_task(
    acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,),
    retry_backoff=True, max_retries=5,
)
def release_request(request_id: int) -> str:
    return release.issuance_request_release(request_id=request_id).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def release_sweep() -> list[int]:
    return release.release_sweep()


@shared_task(**MAIL_TASK)
def notify_bd_pending_task(request_id: int) -> None:
    notifications.bd_pending_mail_send(request_id=request_id)


@shared_task(**MAIL_TASK)
def notify_partner_task(request_id: int) -> None:
    notifications.partner_mail_send(request_id=request_id)
