"""The API's tasks: old idempotency records go (beat); webhook deliveries (notifications
queue) and their sweeper (beat)."""
from celery import shared_task

from api.idempotency import idempotency_purge
from api.webhooks import webhook_deliver_many, webhook_sweep


@shared_task
def idempotency_purge_task() -> int:
    return idempotency_purge()


# Not acks_late's redelivery that keeps a delivery safe: each attempt takes a lease in the
# database, and the sweeper queues again what a dead worker or a lost message left.
@shared_task
def webhook_deliver_task(delivery_ids: list[int]) -> dict:
    return webhook_deliver_many(delivery_ids=delivery_ids)


@shared_task
def webhook_sweep_task() -> int:
    return webhook_sweep()
