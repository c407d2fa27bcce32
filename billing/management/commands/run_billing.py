"""manage.py run_billing --date YYYY-MM-DD — the day's daily bills, then their postings."""
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.daily_bills import daily_bills_make
from couponplatform.exceptions import ApplicationError


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"'{text}' is not a date; write it as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Make the daily bills of one day (default: yesterday in the platform's time zone) "
        "and enqueue the posting of their coupon deductions. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", help="YYYY-MM-DD")

    def handle(self, *args, day: str | None = None, **options):
        bill_date = _day(day) if day else timezone.localdate() - timedelta(days=1)
        try:
            result = daily_bills_make(bill_date=bill_date)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{result.count} daily bills made for {bill_date:%Y-%m-%d}; their deductions are "
            "being posted.",
        )
