"""The coupon table's indexes for its write path: none of balance, uses_left or status (the
columns posting, expiry and voiding change) in any index, so those updates can be HOT;
room on each page for them (fillfactor); and no index that another one already serves.
docs/BENCHMARKS.md "The write path" has the measurements behind each.

Online on PostgreSQL: indexes built and dropped CONCURRENTLY (a non-atomic migration); the
code's constraint renamed in place, its pattern index dropped. On SQLite (development) the
foreign keys' indexes and the code's column constraint stay as they were: altering those
columns would rebuild the table, which the usage statistics' triggers do not survive.
"""
from django.db import migrations, models

from coupons.migrations._online import (
    AddIndexOnline,
    RemoveIndexOnline,
    RunSQLOnPostgres,
    drop_field_index,
)

# The posting updates each coupon it draws on once, or twice when it uses it up, in one
# transaction, where the old versions can not be pruned yet; a HOT update needs the room for
# the new version on the row's own page. Measured in the billing benchmark (10,000 bills,
# every coupon of a page posted in one batch): 0 % of the coupons' updates HOT at
# fillfactor 100, 22 % at 90, 65 % at 50, 80 % at 40, 94 % at 33 (docs/BENCHMARKS.md,
# "The write path"). Two thirds of each page are left free: at 1,000,000 coupons a heap of
# 533 instead of 176 MiB, of which the indexes this migration drops give back 206 MiB.
FILLFACTOR = 33


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0003_subaccount_trigram_search"),
        ("coupons", "0005_request_submission_key"),
    ]

    operations = [
        # New indexes first, so the queries they serve are never without one.
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["sub_account", "valid_until", "id"],
                               name="coupon_account_until"),
        ),
        AddIndexOnline(
            model_name="coupon",
            index=models.Index(fields=["partner", "cost_bearer", "-released_at", "-id"],
                               name="coupon_bearer"),
        ),
        RemoveIndexOnline(model_name="coupon", name="coupon_account"),
        RemoveIndexOnline(model_name="coupon", name="coupon_partner_bearer"),
        RemoveIndexOnline(model_name="coupon", name="coupon_partner_status"),
        RemoveIndexOnline(model_name="coupon", name="coupon_partner_balance"),
        RemoveIndexOnline(model_name="coupon", name="coupon_template_balance"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="coupon", name="template",
                    field=models.ForeignKey(db_index=False,
                                            on_delete=models.deletion.PROTECT,
                                            related_name="coupons",
                                            to="coupons.coupontemplate"),
                ),
                migrations.AlterField(
                    model_name="coupon", name="request",
                    field=models.ForeignKey(db_index=False,
                                            on_delete=models.deletion.PROTECT,
                                            related_name="coupons",
                                            to="coupons.issuancerequest"),
                ),
                migrations.AlterField(
                    model_name="coupon", name="partner",
                    field=models.ForeignKey(db_index=False,
                                            on_delete=models.deletion.PROTECT,
                                            related_name="+", to="accounts.partner"),
                ),
                migrations.AlterField(
                    model_name="coupon", name="sub_account",
                    field=models.ForeignKey(db_index=False,
                                            on_delete=models.deletion.PROTECT,
                                            related_name="coupons", to="accounts.subaccount"),
                ),
                migrations.AlterField(
                    model_name="coupon", name="code",
                    field=models.CharField(max_length=24),
                ),
                migrations.AddConstraint(
                    model_name="coupon",
                    constraint=models.UniqueConstraint(fields=["code"],
                                                       name="coupon_code_unique"),
                ),
            ],
            database_operations=[
                drop_field_index("coupons_coupon", "coupons_coupon_template_id_92e97b0d",
                                 "template_id"),
                drop_field_index("coupons_coupon", "coupons_coupon_request_id_87afff38",
                                 "request_id"),
                drop_field_index("coupons_coupon", "coupons_coupon_partner_id_12677cfb",
                                 "partner_id"),
                drop_field_index("coupons_coupon", "coupons_coupon_sub_account_id_3d5f05ab",
                                 "sub_account_id"),
                RunSQLOnPostgres(
                    ['DROP INDEX CONCURRENTLY IF EXISTS "coupons_coupon_code_40174643_like"',
                     'ALTER TABLE "coupons_coupon" RENAME CONSTRAINT "coupons_coupon_code_key" '
                     'TO "coupon_code_unique"'],
                    ['ALTER TABLE "coupons_coupon" RENAME CONSTRAINT "coupon_code_unique" TO '
                     '"coupons_coupon_code_key"',
                     'CREATE INDEX CONCURRENTLY IF NOT EXISTS "coupons_coupon_code_40174643_like" '
                     'ON "coupons_coupon" ("code" varchar_pattern_ops)'],
                ),
            ],
        ),
        # Only pages written from now on keep the room; VACUUM FULL or pg_repack would
        # rewrite the existing ones.
        RunSQLOnPostgres(
            [f'ALTER TABLE "coupons_coupon" SET (fillfactor = {FILLFACTOR})'],
            ['ALTER TABLE "coupons_coupon" RESET (fillfactor)'],
        ),
    ]
