"""Billing's answer to other apps' signals (they never import billing)."""
from django.db import transaction

from billing import posting


def post_on_coupons_released(sender, *, sub_account_ids=(), **kwargs) -> None:
    """Released coupons pay their accounts' outstanding bills, one posting task per account.

    robust: a broker outage must not fail the release that sent the signal.
    """
    ids = sorted(set(sub_account_ids))
    if ids:
        transaction.on_commit(
            # Not functools.partial: Django names a failed robust callback by __qualname__.
            lambda: posting.accounts_enqueue_posting(sub_account_ids=ids), robust=True,
        )
