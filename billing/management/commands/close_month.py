"""manage.py close_month --month YYYY-MM — the month's monthly bills; the month is final."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.month_close import month_close
from couponplatform.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Make the monthly bills of an ended month (default: the previous month)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM")

    def handle(self, *args, month: str | None = None, **options):
        if not month:
            month = f"{timezone.localdate().replace(day=1) - timedelta(days=1):%Y-%m}"
        try:
            result = month_close(month=month)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if result.already_closed:
            self.stdout.write(f"{result.month:%Y-%m} was closed already "
                              f"({result.bill_count} monthly bills).")
        else:
            self.stdout.write(f"{result.month:%Y-%m} closed: {result.bill_count} monthly bills.")
