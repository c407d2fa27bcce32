"""Row locks of billing's tables, one named helper per table (as Saleor's lock_objects.py):
`select_for_update(of=…, no_key=True)` (FOR NO KEY UPDATE) in pk order. Billing's
writers take coupons (coupons/locks.py) before daily bills, each in pk order, so two of
them never deadlock; the per-day advisory locks are billing/periods.days_lock."""
from django.db.models import QuerySet

from billing.models import DailyBill


def daily_bills_for_update() -> QuerySet[DailyBill]:
    return DailyBill.objects.select_for_update(of=("self",), no_key=True).order_by("pk")
