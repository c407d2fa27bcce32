"""The coupon table's write path: no index holds a column that posting, expiry or voiding
change, so their updates can be heap-only (HOT: no index entry written), and the table
leaves room on its pages for them (docs/BENCHMARKS.md, "The write path")."""
from datetime import timedelta

from django.db import connection
from django.db.models import UniqueConstraint
from django.utils import timezone

from billing.models import DailyBill
from coupons.models import Coupon
from tests import factories as f
from tests.billing.helpers import products

# What posting (balance, uses_left, status), expiry (status) and voiding (status, balance,
# voided_amount, void_reason) write.
CHANGING = {"balance", "uses_left", "status", "voided_amount", "void_reason"}


def _model_index_columns(model) -> set[str]:
    """Columns of the model's declared indexes and unique constraints, their conditions
    included."""
    columns = set()
    declared = [*model._meta.indexes,
                *(c for c in model._meta.constraints if isinstance(c, UniqueConstraint))]
    for item in declared:
        for name in item.fields:
            columns.add(model._meta.get_field(name.lstrip("-")).column)
        if item.condition is not None:
            columns.update(model._meta.get_field(child[0].split("__")[0]).column
                           for child in item.condition.children)
    return columns


def _database_index_columns(table: str) -> set[str]:
    """Every column an index of the table reads on PostgreSQL: its keys and INCLUDE columns,
    and those its expressions or its condition name (all of which make an update that
    changes them not HOT)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid "
            "AND a.attnum = ANY(x.indkey) WHERE x.indrelid = %s::regclass", [table])
        columns = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT coalesce(pg_get_expr(indexprs, indrelid), '') || ' ' || "
            "coalesce(pg_get_expr(indpred, indrelid), '') FROM pg_index "
            "WHERE indrelid = %s::regclass", [table])
        text = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                       "AND attnum > 0", [table])
        columns |= {row[0] for row in cursor.fetchall() if row[0] in text}
    return columns


def test_no_declared_coupon_index_holds_a_column_posting_changes():
    assert not _model_index_columns(Coupon) & CHANGING


def test_no_coupon_index_in_the_database_holds_a_column_posting_changes(postgres_only, db):
    assert not _database_index_columns(Coupon._meta.db_table) & CHANGING


def test_no_bill_index_reads_the_amounts_posting_changes(postgres_only, db):
    # posted_at is set once per bill (the index of unposted bills); the amounts change with
    # every posting and stay out of every index.
    columns = _database_index_columns(DailyBill._meta.db_table)
    assert not columns & {"original_amount", "deduction_amount", "payable_amount"}


def _coupon_update_counts() -> tuple[int, int]:
    """Rows of coupons updated in this transaction so far, and of them HOT."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                       "WHERE relid = %s::regclass", [Coupon._meta.db_table])
        return cursor.fetchone()


def test_posting_updates_a_release_of_coupons_heap_only(postgres_only, db):
    # 150 coupons released by one COPY fill whole pages; one posting then updates every one
    # of them in one transaction, where no old row version can be pruned yet: only the room
    # the fillfactor left on each page keeps the new versions beside the old.
    shop = f.make_shop(150, prefix="HOT-", requires_bd_approval=False)
    products("ecs")
    f.issue(shop.template, shop.admin, shop.bd, shop.accounts)
    updated, hot = _coupon_update_counts()
    yesterday = timezone.localdate() - timedelta(days=1)
    f.bill_usage([(a, yesterday, "ecs", "10.00") for a in shop.accounts])
    now_updated, now_hot = _coupon_update_counts()
    assert now_updated - updated == 150  # every coupon paid 10.00 of its 50.00
    assert (now_hot - hot) / (now_updated - updated) >= 0.9, (now_hot - hot,
                                                              now_updated - updated)


def test_the_coupon_table_keeps_room_on_its_pages(postgres_only, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
                       [Coupon._meta.db_table])
        options = cursor.fetchone()[0] or []
    fillfactor = next((int(o.split("=")[1]) for o in options if o.startswith("fillfactor=")), 100)
    assert fillfactor < 100
