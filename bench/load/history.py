"""The load dataset's bill history: usage by COPY, then the real billing path over it
(bills made per day, posted per account in date order, ended months closed, coupons past
their validity expired), so deductions, balances, monthly bills and the usage statistics
are what the product itself leaves."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from bench import data
from billing.coupon_status import coupons_expire
from billing.daily_bills import daily_bills_make
from billing.models import UsageRecord
from billing.month_close import month_close
from billing.periods import month_end, month_start
from billing.posting import accounts_post_outstanding
from billing.stats import coupon_stats_compact
from couponplatform.db import chunks

# Accounts posted per transaction (each with all its days).
POST_ACCOUNTS = 100


def _usage_rows(accounts, days, products, rng):
    compute, storage = products["compute"].pk, products["storage"].pk
    for day in days:
        for pk in accounts:
            yield (pk, day, compute, Decimal(rng.randint(500, 6_000)) / 100, "USD")
            if rng.random() < 0.6:
                yield (pk, day, storage, Decimal(rng.randint(100, 2_000)) / 100, "USD")


def closable_months(days: list[dt.date], *, keep_open: list[dt.date],
                    today: dt.date) -> list[dt.date]:
    """The history's months that have ended and hold none of `keep_open`'s days (the
    billing runs bill those days later, so their months stay open)."""
    open_months = {month_start(d) for d in keep_open}
    months = sorted({month_start(d) for d in days})
    return [m for m in months if month_end(m) < today and m not in open_months]


def history_make(*, accounts: list[int], days: list[dt.date], products: dict, rng,
                 keep_open: list[dt.date], log=print) -> dict:
    today = timezone.localdate()
    written = data.copy_rows(UsageRecord, ["sub_account", "usage_date", "product", "amount",
                                           "currency"], _usage_rows(accounts, days, products,
                                                                    rng))
    bills = sum(daily_bills_make(bill_date=day, enqueue_posting=False).count for day in days)
    log(f"  {written:,} usage records, {bills:,} daily bills made; posting them")
    deductions = 0
    for chunk in chunks(accounts, POST_ACCOUNTS):
        deductions += accounts_post_outstanding(sub_account_ids=list(chunk)).deductions
    closed = [month_close(month=m, today=today).month
              for m in closable_months(days, keep_open=keep_open, today=today)]
    expired = coupons_expire(today=today)
    coupon_stats_compact()
    log(f"  {deductions:,} deductions; months closed: "
        f"{', '.join(f'{m:%Y-%m}' for m in closed) or 'none'}; {expired:,} coupons expired")
    return {"usage": written, "bills": bills, "deductions": deductions,
            "closed": [m.isoformat() for m in closed], "expired": expired}
