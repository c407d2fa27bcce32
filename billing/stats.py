"""Coupon Usage statistics: compaction, rebuild, and the time zone the triggers count in.

`CouponStat` and `DeductionStat` (billing/models.py) hold deltas that database triggers
insert on every write to coupons and deductions (billing/migrations/0003_usage_stats.py); a
key's figures are the sum of its rows. Writers only insert, so they never wait on each other
and never deadlock; `coupon_stats_compact` folds each key's rows into one, every minute
(beat: `billing.tasks.coupon_stats_compact_task`; command `compact_usage_stats`), so the page
reads about one row per key; `usage_stats_check`, part of the ledger check, compares them
with the rows. docs/USAGE_STATISTICS.md has the why.
"""
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from billing.discrepancy import TOLERANCE, Discrepancy, money_shown
from billing.models import CouponStat, Deduction, DeductionStat
from couponplatform.money import ZERO
from coupons.models import Coupon

KEY = ("partner_id", "template_id", "status", "cost_bearer", "currency", "released_on",
       "valid_until")
COUPON_MEASURES = ("coupons", "amount", "balance", "voided")
DEDUCTION_MEASURES = ("amount",)
# pg_advisory_xact_lock(COMPACT_LOCK, n): one compaction of table n at a time.
COMPACT_LOCK = 0x43505354  # "CPST"


@dataclass
class CompactResult:
    coupon_rows_folded: int = 0
    coupon_rows_written: int = 0
    deduction_rows_folded: int = 0
    deduction_rows_written: int = 0

    def __str__(self) -> str:
        return (f"coupon statistics: {self.coupon_rows_folded} rows folded into "
                f"{self.coupon_rows_written}; deduction statistics: "
                f"{self.deduction_rows_folded} rows folded into {self.deduction_rows_written}")


def _tables():
    return [
        (1, CouponStat._meta.db_table, KEY, COUPON_MEASURES),
        (2, DeductionStat._meta.db_table, (*KEY, "bill_date"), DEDUCTION_MEASURES),
    ]


def _nonzero(measures, *, sqlite: bool) -> str:
    # SQLite sums decimals as floats: a key that nets to zero may leave 1e-15 behind.
    if sqlite:
        return " OR ".join(f"ABS(SUM({m})) >= 0.005" for m in measures)
    return " OR ".join(f"SUM({m}) <> 0" for m in measures)


def _compact_pg(cursor, number: int, table: str, key, measures) -> tuple[int, int]:
    """One statement, so one snapshot: the rows it deletes are exactly the rows it sums.
    Rows other transactions insert meanwhile are not in its snapshot: they stay, pending,
    for the next run."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [COMPACT_LOCK, number])
    # Compiling the statement (JIT, once its estimate passes jit_above_cost) would cost
    # more than running it.
    cursor.execute("SET LOCAL jit = off")
    keys = ", ".join(key)
    cursor.execute(f"""
        WITH pending AS (
            SELECT DISTINCT {keys} FROM {table} WHERE NOT compacted
        ), gone AS (
            DELETE FROM {table} AS s USING pending AS p
            WHERE {" AND ".join(f"s.{k} = p.{k}" for k in key)}
            RETURNING s.*
        ), written AS (
            INSERT INTO {table} ({keys}, {", ".join(measures)}, compacted)
            SELECT {keys}, {", ".join(f"SUM({m})" for m in measures)}, true
            FROM gone GROUP BY {keys}
            HAVING {_nonzero(measures, sqlite=False)}
            RETURNING 1
        )
        SELECT (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM written)
    """)
    folded, written = cursor.fetchone()
    return folded, written


def _compact_sqlite(cursor, table: str, key, measures) -> tuple[int, int]:
    """SQLite lets one writer in at a time (the transaction is IMMEDIATE), so two
    statements over the rows up to the highest id see the same rows."""
    keys = ", ".join(key)
    cursor.execute(f"SELECT MAX(id) FROM {table}")
    top = cursor.fetchone()[0]
    if top is None:
        return 0, 0
    pending = f"({keys}) IN (SELECT {keys} FROM {table} WHERE NOT compacted AND id <= %s)"
    cursor.execute(f"""
        INSERT INTO {table} ({keys}, {", ".join(measures)}, compacted)
        SELECT {keys}, {", ".join(f"SUM({m})" for m in measures)}, 1
        FROM {table} WHERE id <= %s AND {pending}
        GROUP BY {keys} HAVING {_nonzero(measures, sqlite=True)}
    """, [top, top])
    written = cursor.rowcount
    cursor.execute(f"DELETE FROM {table} WHERE id <= %s AND {pending}", [top, top])
    return cursor.rowcount, written


def coupon_stats_compact(*, using: str = DEFAULT_DB_ALIAS) -> CompactResult:
    """Fold each key's delta rows into one row holding their sum; drop keys that sum to 0.

    One transaction per table, under an advisory lock so two compactions never overlap.
    The page's figures do not change: only the number of rows they are summed from.
    """
    connection = connections[using]
    result = CompactResult()
    for number, table, key, measures in _tables():
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                folded, written = _compact_pg(cursor, number, table, key, measures)
            else:
                folded, written = _compact_sqlite(cursor, table, key, measures)
        if number == 1:
            result.coupon_rows_folded, result.coupon_rows_written = folded, written
        else:
            result.deduction_rows_folded, result.deduction_rows_written = folded, written
    return result


# ---------------------------------------------------------------------------------------
# Rebuild from the rows, and the time zone of the release day


def _released_on(connection, column: str) -> str:
    """The release day as the triggers compute it (the migration's `_pg_key`/`_lite_key`)."""
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE couponplatform_tz())::date"
    return (f"django_datetime_cast_date({column}, (SELECT name FROM couponplatform_tz), "
            "(SELECT conn FROM couponplatform_tz))")


def _backfill_sql(connection) -> list[str]:
    keys = ", ".join(KEY)
    key_c = (f"c.partner_id, c.template_id, c.status, c.cost_bearer, c.currency, "
             f"{_released_on(connection, 'c.released_at')}, c.valid_until")
    true = "true" if connection.vendor == "postgresql" else "1"
    return [
        f"""INSERT INTO {CouponStat._meta.db_table}
            ({keys}, coupons, amount, balance, voided, compacted)
        SELECT {key_c}, COUNT(*), SUM(c.amount), SUM(c.balance), SUM(c.voided_amount), {true}
        FROM coupons_coupon c GROUP BY 1, 2, 3, 4, 5, 6, 7""",
        f"""INSERT INTO {DeductionStat._meta.db_table} ({keys}, bill_date, amount, compacted)
        SELECT {key_c}, d.bill_date, SUM(d.amount), {true}
        FROM billing_deduction d JOIN coupons_coupon c ON c.id = d.coupon_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8""",
    ]


def coupon_stats_rebuild(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Throw the statistics away and count them again from the coupons and deductions, as
    the migration's backfill did. Writers of coupons and deductions wait meanwhile (on
    PostgreSQL a SHARE lock on both tables), so no delta is counted twice or lost."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("LOCK TABLE coupons_coupon, billing_deduction IN SHARE MODE")
        cursor.execute(f"DELETE FROM {CouponStat._meta.db_table}")
        cursor.execute(f"DELETE FROM {DeductionStat._meta.db_table}")
        for sql in _backfill_sql(connection):
            cursor.execute(sql)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stats_timezone(*, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The time zone the triggers count release days in; None before the migration."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT to_regprocedure('couponplatform_tz()') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return None
            cursor.execute("SELECT couponplatform_tz()")
            return cursor.fetchone()[0]
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'view' "
                       "AND name = 'couponplatform_tz'")
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT name, conn FROM couponplatform_tz")
        name, conn = cursor.fetchone()
        # Django's SQLite backend converts from the connection's zone as well.
        return name if conn == connection.timezone_name else f"{name} ({conn})"


def stats_timezone_sync(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Make the triggers count release days in settings.TIME_ZONE, the zone the page's
    "Released from/to" filters use. When it changed, every key's release day may have
    moved: the statistics are rebuilt in the same transaction. Returns whether it changed.

    The one place the triggers read it: the SQL function couponplatform_tz() on PostgreSQL,
    the view couponplatform_tz on SQLite (which has no stored functions).
    """
    connection = connections[using]
    current = stats_timezone(using=using)
    if current is None or current == settings.TIME_ZONE:
        return False
    tz = settings.TIME_ZONE
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT now() AT TIME ZONE %s", [tz])  # refuses an unknown zone
            cursor.execute(
                "CREATE OR REPLACE FUNCTION couponplatform_tz() RETURNS text "
                f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_quoted(tz)}::text $$")
        else:
            cursor.execute("DROP VIEW couponplatform_tz")
            cursor.execute(
                f"CREATE VIEW couponplatform_tz AS SELECT {_quoted(tz)} AS name, "
                f"{_quoted(connection.timezone_name)} AS conn")
        coupon_stats_rebuild(using=using)
    return True


def on_post_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate (connected in BillingConfig.ready): a changed TIME_ZONE reaches the
    triggers at the next `migrate`, as every deployment runs it.

    `flush` sends it too. On SQLite flush empties the tables one by one with DELETE, in no
    set order, so the coupons' delete triggers may write into statistics already emptied;
    with no coupon and no deduction left the statistics can only be empty."""
    if stats_timezone(using=using) is None:
        return  # the statistics' migration is not applied
    if stats_timezone_sync(using=using):
        return
    if (CouponStat.objects.using(using).exists()
            and not Coupon.objects.using(using).exists()
            and not Deduction.objects.using(using).exists()):
        CouponStat.objects.using(using).all().delete()
        DeductionStat.objects.using(using).all().delete()


# ---------------------------------------------------------------------------------------
# The check (part of the ledger check)


def _stat_key_name(key: tuple) -> str:
    partner, template, status, bearer, currency, released_on, valid_until, *day = key
    return (f"partner #{partner}, template #{template}, {status}, {bearer}-borne, {currency}, "
            f"released {released_on}, valid until {valid_until}"
            + (f", bill day {day[0]}" if day else ""))


STAT_MEASURE_NAMES = {"n": "count", "amount_sum": "amount", "balance_sum": "balance",
                      "voided_sum": "voided"}


def _shown(measure: str, value: Decimal) -> str:
    return str(int(value)) if measure == "n" else str(money_shown(value))


def _stats_compare(rule: str, what: str, want_qs: QuerySet, have_qs: QuerySet,
                   key: tuple[str, ...], measures: tuple[str, ...]) -> list[Discrepancy]:
    """Each key whose figures in the statistics differ from the rows' own, either way."""
    def by_key(qs):
        return {tuple(row[k] for k in key): tuple(Decimal(str(row[m] or 0)) for m in measures)
                for row in qs.order_by()}

    want, have = by_key(want_qs), by_key(have_qs)
    zero = tuple(ZERO for _ in measures)
    found = []
    for k in sorted(want.keys() | have.keys(), key=lambda k: tuple(map(str, k))):
        w, h = want.get(k, zero), have.get(k, zero)
        if any(abs(a - b) > TOLERANCE for a, b in zip(w, h, strict=True)):
            found.append(Discrepancy(
                rule, f"{what} of {_stat_key_name(k)}",
                "rows " + "/".join(_shown(m, a) for m, a in zip(measures, w, strict=True))
                + ", statistics " + "/".join(_shown(m, b) for m, b in zip(measures, h,
                                                                             strict=True))
                + f" ({'/'.join(STAT_MEASURE_NAMES.get(m, m) for m in measures)})",
            ))
    return found


def usage_stats_check() -> list[Discrepancy]:
    """The statistics, summed per key, equal the same sums
    over the coupons and deductions themselves: the triggers keep them, so a difference is
    a write that slipped past them or a compaction that lost a row."""
    coupon_key = {k: F(k) for k in KEY if k != "released_on"}
    coupon_key["released_on"] = TruncDate("released_at")
    deduction_key = {k: F(f"coupon__{k}") for k in KEY if k != "released_on"}
    deduction_key["released_on"] = TruncDate("coupon__released_at")
    deduction_key["bill"] = F("bill_date")
    coupon_measures = ("n", "amount_sum", "balance_sum", "voided_sum")
    return [
        *_stats_compare(
            "coupon statistics ≠ the coupons", "coupons",
            Coupon.objects.values(**{f"k_{k}": v for k, v in coupon_key.items()}).annotate(
                n=Count("pk"), amount_sum=Sum("amount"), balance_sum=Sum("balance"),
                voided_sum=Sum("voided_amount"),
            ),
            CouponStat.objects.values(**{f"k_{k}": F(k) for k in KEY}).annotate(
                n=Sum("coupons"), amount_sum=Sum("amount"), balance_sum=Sum("balance"),
                voided_sum=Sum("voided"),
            ),
            tuple(f"k_{k}" for k in KEY), coupon_measures,
        ),
        *_stats_compare(
            "deduction statistics ≠ the deductions", "deductions",
            Deduction.objects.values(**{f"k_{k}": v for k, v in deduction_key.items()})
            .annotate(amount_sum=Sum("amount")),
            DeductionStat.objects.values(
                **{f"k_{k}": F(k) for k in KEY}, k_bill=F("bill_date"),
            ).annotate(amount_sum=Sum("amount")),
            (*(f"k_{k}" for k in KEY), "k_bill"), ("amount_sum",),
        ),
    ]
