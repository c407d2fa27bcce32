"""Billing periods: months, the closed months whose bills are final, and the per-day locks
that keep usage off a day whose bill is being made or whose month is being closed."""
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import connection

from billing.models import ClosedMonth
from couponplatform.db import is_postgres
from couponplatform.exceptions import ApplicationError

# Namespace of the per-day advisory locks (pg_advisory_xact_lock(namespace, day)).
DAY_LOCK_NAMESPACE = 740_001


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def month_parse(text: str) -> date:
    """'2025-02' → date(2025, 2, 1), or ApplicationError saying what is expected."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except (AttributeError, ValueError):
        raise ApplicationError(f"'{text}' is not a month; write it as YYYY-MM.") from None


def closed_months(months: Iterable[date]) -> set[date]:
    """Which of these months (their first days) are closed."""
    months = set(months)
    if not months:
        return set()
    return set(ClosedMonth.objects.filter(month__in=months).values_list("month", flat=True))


def days_lock(days: Iterable[date]) -> None:
    """Take the per-day advisory locks (sorted, so two lockers never deadlock).

    SQLite serialises writers on its own, so there is nothing to take there.
    """
    if not is_postgres():
        return
    with connection.cursor() as cursor:
        for day in sorted(set(days)):
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [DAY_LOCK_NAMESPACE, day.toordinal()],
            )
