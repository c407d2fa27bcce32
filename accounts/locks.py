"""Row locks of accounts' tables, one named helper per table (as Saleor's lock_objects.py):
`select_for_update(of=…, no_key=True)` (FOR NO KEY UPDATE) in pk order, so two lockers
of many rows take them alike and never deadlock, and a foreign key to a locked row is
not blocked (docs/ARCHITECTURE.md, "Lock order"). Every service that locks one of these
rows calls its helper."""
from django.db.models import QuerySet

from accounts.models import Partner, PlatformBudget


def partners_for_update() -> QuerySet[Partner]:
    return Partner.objects.select_for_update(of=("self",), no_key=True).order_by("pk")


def platform_budgets_for_update() -> QuerySet[PlatformBudget]:
    return PlatformBudget.objects.select_for_update(of=("self",), no_key=True).order_by("pk")
