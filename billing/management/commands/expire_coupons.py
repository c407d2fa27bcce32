"""manage.py expire_coupons — marks coupons past their valid until expired."""
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import ngettext

from billing.coupon_status import coupons_expire


class Command(BaseCommand):
    help = (
        "Mark available coupons whose validity ended before today (platform time zone) "
        "expired. Their unused balance stays for reporting (breakage)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--today", help="YYYY-MM-DD (default: today)")

    def handle(self, *args, today: str | None = None, **options):
        try:
            day = date.fromisoformat(today) if today else timezone.localdate()
        except ValueError:
            raise CommandError(f"'{today}' is not a date; write it as YYYY-MM-DD.") from None
        expired = coupons_expire(today=day)
        self.stdout.write(ngettext("%(n)s coupon expired.", "%(n)s coupons expired.", expired)
                          % {"n": f"{expired:,}"})
