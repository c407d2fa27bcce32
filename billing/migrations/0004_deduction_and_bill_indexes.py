"""The deduction and bill tables' indexes: none that another index already serves (the
foreign keys' own ones, the sub-account's bills newest first, which the unique index read
backwards gives), none that no query uses (deductions by partner); the deduction's unique
constraint line first, so it also serves posting's lookup by line; the bills never posted
indexed alone, so no index reads a bill's amounts and its updates by posting can be HOT.
docs/BENCHMARKS.md "The write path" has the measurements behind each.

Online on PostgreSQL (CONCURRENTLY; a non-atomic migration). On SQLite (development) the
foreign keys' indexes and the deduction's (coupon, line) constraint stay: changing those
would rebuild the tables, which the usage statistics' triggers do not survive.
"""
from django.db import migrations, models

from coupons.migrations._online import (
    AddIndexOnline,
    RemoveIndexOnline,
    RunSQLOnPostgres,
    drop_field_index,
)


def _fk(model: str, name: str, to: str, related_name: str) -> migrations.AlterField:
    return migrations.AlterField(
        model_name=model, name=name,
        field=models.ForeignKey(db_index=False, on_delete=models.deletion.PROTECT,
                                related_name=related_name, to=to),
    )


FIELD_INDEXES = [  # (table, Django's index name, column)
    ("billing_deduction", "billing_deduction_coupon_id_5dc8a55f", "coupon_id"),
    ("billing_deduction", "billing_deduction_line_id_608a4b51", "line_id"),
    ("billing_deduction", "billing_deduction_partner_id_7412b6b9", "partner_id"),
    ("billing_deduction", "billing_deduction_sub_account_id_3e9875ad", "sub_account_id"),
    ("billing_dailybill", "billing_dailybill_sub_account_id_ce82ddaf", "sub_account_id"),
    ("billing_dailybillline", "billing_dailybillline_bill_id_73b1ab7f", "bill_id"),
    ("billing_dailybillline", "billing_dailybillline_product_id_d631231f", "product_id"),
    ("billing_monthlybill", "billing_monthlybill_sub_account_id_75af34e1", "sub_account_id"),
    ("billing_monthlybillline", "billing_monthlybillline_bill_id_73d18969", "bill_id"),
    ("billing_monthlybillline", "billing_monthlybillline_product_id_1d5ea822", "product_id"),
    ("billing_monthlycoupondeduction", "billing_monthlycoupondeduction_bill_id_0d6dbbda",
     "bill_id"),
    ("billing_monthlycoupondeduction", "billing_monthlycoupondeduction_coupon_id_c835b442",
     "coupon_id"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0003_subaccount_trigram_search"),
        ("billing", "0003_usage_stats"),
        ("coupons", "0006_coupon_indexes_without_balance_or_status"),
    ]

    operations = [
        AddIndexOnline(
            model_name="dailybill",
            index=models.Index(condition=models.Q(posted_at__isnull=True),
                               fields=["sub_account", "date"], name="dailybill_unposted"),
        ),
        RemoveIndexOnline(model_name="dailybill", name="dailybill_outstanding"),
        RemoveIndexOnline(model_name="deduction", name="deduction_partner_day"),
        RemoveIndexOnline(model_name="dailybill", name="dailybill_account"),
        RemoveIndexOnline(model_name="monthlybill", name="monthlybill_account"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                _fk("deduction", "coupon", "coupons.coupon", "deductions"),
                _fk("deduction", "line", "billing.dailybillline", "deductions"),
                _fk("deduction", "partner", "accounts.partner", "+"),
                _fk("deduction", "sub_account", "accounts.subaccount", "+"),
                _fk("dailybill", "sub_account", "accounts.subaccount", "daily_bills"),
                _fk("dailybillline", "bill", "billing.dailybill", "lines"),
                _fk("dailybillline", "product", "accounts.product", "+"),
                _fk("monthlybill", "sub_account", "accounts.subaccount", "monthly_bills"),
                _fk("monthlybillline", "bill", "billing.monthlybill", "lines"),
                _fk("monthlybillline", "product", "accounts.product", "+"),
                _fk("monthlycoupondeduction", "bill", "billing.monthlybill",
                    "coupon_deductions"),
                _fk("monthlycoupondeduction", "coupon", "coupons.coupon", "+"),
                migrations.RemoveConstraint(model_name="deduction",
                                            name="deduction_once_per_line"),
                migrations.AddConstraint(
                    model_name="deduction",
                    constraint=models.UniqueConstraint(fields=["line", "coupon"],
                                                       name="deduction_once_per_line"),
                ),
            ],
            database_operations=[
                # The (line, coupon) index is built beside the old one, then takes over its
                # constraint: uniqueness never lapses.
                RunSQLOnPostgres(
                    ['CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "deduction_line_coupon" '
                     'ON "billing_deduction" ("line_id", "coupon_id")',
                     'ALTER TABLE "billing_deduction" DROP CONSTRAINT "deduction_once_per_line", '
                     'ADD CONSTRAINT "deduction_once_per_line" UNIQUE USING INDEX '
                     '"deduction_line_coupon"'],
                    ['CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "deduction_coupon_line" '
                     'ON "billing_deduction" ("coupon_id", "line_id")',
                     'ALTER TABLE "billing_deduction" DROP CONSTRAINT "deduction_once_per_line", '
                     'ADD CONSTRAINT "deduction_once_per_line" UNIQUE USING INDEX '
                     '"deduction_coupon_line"'],
                ),
                *[drop_field_index(table, name, column) for table, name, column in FIELD_INDEXES],
            ],
        ),
    ]
