"""manage.py compact_usage_stats — folds the Coupon Usage statistics' delta rows."""
from django.core.management.base import BaseCommand

from billing.stats import coupon_stats_compact, coupon_stats_rebuild


class Command(BaseCommand):
    help = (
        "Fold the Coupon Usage statistics' delta rows into one row per key (beat runs this "
        "every minute). --rebuild counts them again from the coupons and deductions."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true",
            help="Throw the statistics away and count them from the rows (writers of coupons "
                 "and deductions wait meanwhile).",
        )

    def handle(self, *args, rebuild: bool = False, **options):
        if rebuild:
            coupon_stats_rebuild()
            self.stdout.write("Usage statistics rebuilt from the coupons and deductions.")
        self.stdout.write(f"Compacted {coupon_stats_compact()}.")
