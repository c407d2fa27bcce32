"""Coupon Usage's cost-bearer filter (alone or with a status) at a million coupons."""
from django.db import migrations, models

from coupons.migrations._online import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("coupons", "0003_usage_sort_indexes"),
    ]

    operations = [
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "cost_bearer", "status", "-released_at", "-id"],
                               name="coupon_partner_bearer"),
        ),
    ]
