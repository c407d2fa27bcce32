"""Demo usage: 60 days of usage for some accounts, billed day by day, months closed."""
import io
import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.daily_bills import daily_bills_make
from billing.models import ClosedMonth, UsageImport
from billing.month_close import month_close
from billing.periods import month_start
from billing.posting import bills_enqueue_posting
from billing.usage_import import usage_import
from couponplatform.exceptions import ApplicationError

DAYS = 60
PRODUCT_WEIGHTS = [("ecs", 40, 400), ("oss", 5, 60), ("rds", 20, 250), ("cdn", 2, 40)]


def seed_usage(*, account_ids: list[str], log=print, days: int = DAYS) -> None:
    if UsageImport.objects.filter(source=UsageImport.Source.DEMO).exists():
        return
    rng = random.Random(42)
    today = timezone.localdate()
    start = today - timedelta(days=days)
    out = io.StringIO()
    out.write("account_id,date,product_code,amount,currency\n")
    for account_id in account_ids:
        products = rng.sample(PRODUCT_WEIGHTS, k=rng.randint(1, 3))
        for offset in range(days):
            day = start + timedelta(days=offset)
            for code, low, high in products:
                cents = rng.randint(low * 100, high * 100)
                out.write(f"{account_id},{day:%Y-%m-%d},{code},{Decimal(cents) / 100},USD\n")
    out.seek(0)
    batch = usage_import(file=io.BytesIO(out.getvalue().encode()), file_name="demo-usage.csv",
                         source=UsageImport.Source.DEMO)
    # Every day's bills first, then their posting in batches of POST_BATCH bills: one
    # posting task per 500 bills instead of one per day. Each day's bills are committed by
    # then (outside a transaction), so a worker never reads a bill that is not there yet.
    bill_ids: list[int] = []
    for offset in range(days):
        bill_ids += daily_bills_make(bill_date=start + timedelta(days=offset),
                                     enqueue_posting=False).bill_ids
    bills_enqueue_posting(bill_ids=bill_ids)
    bills = len(bill_ids)
    first = month_start(start)
    closed = 0
    while first < month_start(today):
        if not ClosedMonth.objects.filter(month=first).exists():
            try:
                month_close(month=first)
                closed += 1
            except ApplicationError as exc:
                log(f"  month {first:%Y-%m} not closed: {exc.message}")
        first = month_start(first + timedelta(days=32))
    log(f"Demo usage: {batch.record_count:,} records, {bills:,} daily bills over {days} days, "
        f"{closed} month(s) closed.")
