"""The size of a row of each growing table, measured on a month of billing made through the
services, and the year at 1,000,000 sub-accounts projected from it (docs/SCALING.md).

`python -m bench.table_growth` (DATABASE_URL: PostgreSQL; a throwaway database, as
bench.run). No broker: the tasks run in-process. Prints the figures as markdown.

The month: ACCOUNTS sub-accounts of one distributor, each issued two partner-borne cash
coupons (20.00 and 50.00) at the month's start, then a usage import per day of 1–3
products per account, each day's bills made and posted, a few coupons voided, the month
closed, the rest expired. Sizes are taken after VACUUM ANALYZE: the heap's bytes per row
(pg_relation_size / rows), the indexes' (pg_indexes_size / rows), and the tuple's own
data (avg pg_column_size of the row).
"""
from __future__ import annotations

import datetime as dt
import io
import os
import random
import time
from decimal import Decimal
from unittest import mock

from bench import harness

ACCOUNTS = int(os.environ.get("GROWTH_ACCOUNTS", "2000"))
PRODUCTS = ["ecs", "oss", "rds"]
YEAR_ACCOUNTS = 1_000_000
TABLES = [
    ("billing_dailybill", "daily bills"),
    ("billing_dailybillline", "daily bill lines"),
    ("billing_usagerecord", "usage records"),
    ("billing_deduction", "deductions"),
    ("audit_auditlog", "audit rows"),
    ("coupons_coupon", "coupons"),
    ("coupons_issuancerecipient", "issuance recipients"),
    ("billing_monthlybill", "monthly bills"),
    ("billing_monthlybillline", "monthly bill lines"),
    ("billing_monthlycoupondeduction", "monthly coupon deductions"),
    ("billing_couponstat", "usage statistics (coupons)"),
    ("billing_deductionstat", "usage statistics (deductions)"),
]


def _month() -> tuple[dt.date, dt.date]:
    """The last whole month before today, in the platform's time zone."""
    from django.utils import timezone

    first_this = timezone.localdate().replace(day=1)
    last = first_this - dt.timedelta(days=1)
    return last.replace(day=1), last


def _at(day: dt.date):
    from django.utils import timezone

    moment = timezone.make_aware(dt.datetime.combine(day, dt.time(9)))
    return mock.patch("django.utils.timezone.now", return_value=moment)


def build() -> dict:
    from approvals.services import approval_approve
    from bench import data
    from billing.coupon_status import coupon_void, coupons_expire
    from billing.daily_bills import daily_bills_make
    from billing.month_close import month_close
    from billing.stats import coupon_stats_compact
    from billing.usage_import import usage_import
    from coupons.models import Coupon, IssuanceRequest
    from coupons.services import coupon_template_create, issuance_request_submit

    first, last = _month()
    rng = random.Random(7)
    partner, admin = data.make_partner("Growth Distribution", requires_bd_approval=False)
    data.make_products(PRODUCTS)
    accounts = [a for _pk, a in data.make_sub_accounts(partner, ACCOUNTS, prefix="GR")]
    with _at(first):
        for name, face in (("Welcome 20", "20.00"), ("Growth 50", "50.00")):
            template = coupon_template_create(
                partner=partner, acting_user=admin, name=name, kind="cash", currency="USD",
                face_value=Decimal(face), cost_bearer="partner", issue_limit="unlimited",
                validity_type="relative", valid_days=60,
            )
            request = issuance_request_submit(template=template, acting_user=admin,
                                              account_ids=accounts)
            if request.status == IssuanceRequest.Status.PENDING:
                approval_approve(request_id=request.pk, acting_user=partner.bd)
    products = {a: rng.sample(PRODUCTS, k=rng.randint(1, 3)) for a in accounts}
    day = first
    while day <= last:
        out = io.StringIO("account_id,date,product_code,amount\n")
        out.seek(0, io.SEEK_END)
        for account in accounts:
            for code in products[account]:
                out.write(f"{account},{day:%Y-%m-%d},{code},{rng.randint(20, 400) / 100:.2f}\n")
        with _at(day + dt.timedelta(days=1)):
            usage_import(file=io.BytesIO(out.getvalue().encode()), file_name=f"{day}.csv")
            daily_bills_make(bill_date=day)
        day += dt.timedelta(days=1)
    with _at(last):
        for coupon in Coupon.objects.filter(status="available").order_by("pk")[:ACCOUNTS // 50]:
            coupon_void(coupon=coupon, acting_user=admin, reason="Issued in error")
    month_close(month=first, today=last + dt.timedelta(days=2))
    coupons_expire(today=last + dt.timedelta(days=61))
    coupon_stats_compact()
    return {"first": first, "last": last, "days": (last - first).days + 1}


def measure(*, full: bool) -> list[dict]:
    """After VACUUM ANALYZE (as written: updated rows leave their old versions' space and
    index entries behind, which autovacuum would have reused along the way), or after
    VACUUM FULL (compact: the table and its indexes rewritten)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table, _ in TABLES:
            cursor.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE {table}")
        rows = []
        for table, label in TABLES:
            cursor.execute(f"""
                SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0),
                       pg_relation_size('{table}'), pg_indexes_size('{table}'),
                       pg_total_relation_size('{table}')
                FROM {table} t""")
            count, tuple_bytes, heap, indexes, total = cursor.fetchone()
            rows.append({"table": table, "label": label, "rows": count,
                         "tuple": float(tuple_bytes), "heap": heap, "indexes": indexes,
                         "total": total})
    return rows


def projection(rows: list[dict], compact: list[dict], month: dict) -> list[list[str]]:
    """Rows a year at YEAR_ACCOUNTS accounts: the month's rows per account per day (bill
    tables, usage) or per account (coupon tables, audit) scaled up; see docs/SCALING.md
    for the assumptions this takes."""
    per_day = {"billing_dailybill", "billing_dailybillline", "billing_usagerecord",
               "billing_deduction"}
    out = []
    for r, c in zip(rows, compact, strict=True):
        if not r["rows"]:
            continue
        if r["table"] in per_day:
            year_rows = r["rows"] / ACCOUNTS / month["days"] * 365 * YEAR_ACCOUNTS
        elif r["table"].startswith("billing_monthly"):
            year_rows = r["rows"] / ACCOUNTS * 12 * YEAR_ACCOUNTS
        elif r["table"] in ("billing_couponstat", "billing_deductionstat"):
            continue  # per key (template, status, day), not per account: stays small
        else:  # a month's coupons and their audit rows; a campaign a month
            year_rows = r["rows"] / ACCOUNTS * 12 * YEAR_ACCOUNTS
        written, packed = r["total"] / r["rows"], c["total"] / c["rows"]
        out.append([r["label"], f"{year_rows / 1e6:,.0f} M", f"{packed:,.0f} B",
                    f"{year_rows * packed / 2**30:,.0f} GiB", f"{written:,.0f} B",
                    f"{year_rows * written / 2**30:,.0f} GiB"])
    return out


def _sizes_table(rows: list[dict], month: dict) -> str:
    from bench import harness

    return harness.md_table(
        ["table", "rows", "per account-day", "tuple B (avg pg_column_size)", "heap B/row",
         "index B/row", "total B/row"],
        [[f"{r['label']} (`{r['table']}`)", f"{r['rows']:,}",
          f"{r['rows'] / ACCOUNTS / month['days']:.2f}",
          f"{r['tuple']:.0f}", *(f"{r[k] / r['rows']:.0f}" if r["rows"] else "–"
                                 for k in ("heap", "indexes", "total"))]
         for r in rows],
    )


def main() -> None:
    harness.setup_django()
    with harness.throwaway_database():
        start = time.perf_counter()
        month = build()
        built = time.perf_counter() - start
        written = measure(full=False)
        compact = measure(full=True)
    print(f"\n{ACCOUNTS:,} accounts, {month['first']:%Y-%m} ({month['days']} days), built "
          f"in {built:.0f} s through the services\n")
    print("As written (after VACUUM ANALYZE):\n")
    print(_sizes_table(written, month))
    print("\nCompact (after VACUUM FULL):\n")
    print(_sizes_table(compact, month))
    print()
    print(harness.md_table(
        ["table", f"rows a year at {YEAR_ACCOUNTS:,} accounts", "B/row compact",
         "a year compact", "B/row as written", "a year as written"],
        projection(written, compact, month)))


if __name__ == "__main__":
    main()
