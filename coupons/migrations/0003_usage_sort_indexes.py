"""Indexes for Coupon Usage's status filter and sorts at a million coupons.

Built CONCURRENTLY on PostgreSQL, so a live coupons table keeps taking releases and
postings while they build (hence a non-atomic migration); a plain CREATE INDEX elsewhere.
"""
from django.db import migrations, models

from coupons.migrations._online import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0003_subaccount_trigram_search"),
        ("coupons", "0002_request_postings_pending"),
    ]

    operations = [
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "status", "-released_at", "-id"],
                               name="coupon_partner_status"),
        ),
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "amount", "id"], name="coupon_partner_amount"),
        ),
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "balance", "id"],
                               name="coupon_partner_balance"),
        ),
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "valid_until", "id"],
                               name="coupon_partner_until"),
        ),
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["template", "balance", "id"],
                               name="coupon_template_balance"),
        ),
    ]
