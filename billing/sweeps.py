"""Sweepers: they find postings whose task was lost (broker down, worker killed) from the
state the database keeps, and post them again; posting is idempotent, so a sweep racing
a late task is harmless."""
from datetime import timedelta

from django.utils import timezone

from billing.models import DailyBill
from billing.posting import POST_BATCH, accounts_post_outstanding, bills_enqueue_posting
from couponplatform.db import chunks
from coupons.models import IssuanceRecipient, IssuanceRequest
from coupons.services import issuance_request_postings_confirm


def daily_bills_post_pending(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Re-enqueue the posting of bills whose task was lost (broker down, worker killed).

    Posting is idempotent, so a bill whose task was only slow is posted once all the same.
    """
    cutoff = timezone.now() - older_than
    bill_ids = list(
        DailyBill.objects.filter(posted_at__isnull=True, created_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    bills_enqueue_posting(bill_ids=bill_ids)
    return len(bill_ids)


def released_postings_sweep(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Post, here and now, the outstanding bills of the accounts of released requests whose
    postings were never confirmed (the task published after the release was lost: broker
    down, worker killed). Posting is idempotent, so a request whose tasks did run is only
    checked again. Returns how many requests were swept."""
    cutoff = timezone.now() - older_than
    request_ids = list(
        IssuanceRequest.objects.filter(postings_pending=True, issued_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    for request_id in request_ids:
        account_ids = sorted(set(
            IssuanceRecipient.objects.filter(request_id=request_id)
            .values_list("sub_account_id", flat=True)
        ))
        for chunk in chunks(account_ids, POST_BATCH):
            accounts_post_outstanding(sub_account_ids=chunk)
        issuance_request_postings_confirm(request_id=request_id)
    return len(request_ids)
