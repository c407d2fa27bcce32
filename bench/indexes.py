"""Every index of the coupon, deduction and bill tables against the queries of the app, at
1,000,000 coupons: which index each query's plan uses, its time with the index and with it
dropped (in a transaction rolled back), and what each index costs the writers."""
from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from bench import usage_pages
from bench.harness import Report, explain, log, md_table
from billing import selectors
from billing.locks import daily_bills_for_update
from billing.models import DailyBill, DailyBillLine, Deduction
from coupons.locks import coupons_for_update
from coupons.models import Coupon

NAME = "indexes"
TITLE = "The indexes of the coupon, deduction and bill tables at 1,000,000 coupons"
TABLES = ["coupons_coupon", "billing_deduction", "billing_dailybill", "billing_dailybillline",
          "billing_monthlybill", "billing_monthlybillline", "billing_monthlycoupondeduction"]
RUNS = 7


def _sql(qs) -> tuple[str, list]:
    with transaction.atomic():  # a FOR UPDATE query compiles inside a transaction only
        sql, params = qs.query.get_compiler(using="default").as_sql()
    return sql, list(params)


def _queries(big, today: dt.date) -> list[tuple[str, str, object]]:
    """(table, what the app asks, queryset) for every read the app makes of these tables
    that an index could serve, with values from the benchmark's 1M distributor."""
    partner = big[0]
    templates = big[2]
    active = big[3]
    account = active[len(active) // 2]
    accounts = active[:500]  # a posting batch's accounts
    usage = selectors.coupon_usage_list(partner=partner)
    loyalty = templates["Monthly loyalty credit"]
    one_account_coupons = list(Coupon.objects.filter(sub_account_id=account)
                               .values_list("pk", flat=True))
    bills = list(DailyBill.objects.filter(sub_account_id__in=accounts, date=today
                                          - dt.timedelta(days=1)).values_list("pk", flat=True))
    lines = list(DailyBillLine.objects.filter(bill_id__in=bills).values_list("pk", flat=True))
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    last = today.replace(day=1) - dt.timedelta(days=1)
    since = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=120), dt.time()))
    until = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=90), dt.time()))
    unposted = DailyBill.objects.filter(
        sub_account_id=OuterRef("sub_account_id"), posted_at__isnull=True,
        date__gte=OuterRef("valid_from"), date__lte=OuterRef("valid_until"))
    return [
        ("coupons_coupon", "Coupon Usage: newest first",
         usage.order_by("-released_at", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: released in a 30-day range, oldest first",
         usage.filter(released_at__gte=since, released_at__lt=until)
         .order_by("released_at", "id")[:26]),
        ("coupons_coupon", "Coupon Usage: one template, newest first",
         usage.filter(template_id=loyalty).order_by("-released_at", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: status available, newest first",
         usage.filter(status="available").order_by("-released_at", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: status voided (3 %), newest first",
         usage.filter(status="voided").order_by("-released_at", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: platform-borne + expired, newest first",
         usage.filter(cost_bearer="platform", status="expired")
         .order_by("-released_at", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: by amount", usage.order_by("-amount", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: status available, by amount",
         usage.filter(status="available").order_by("-amount", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: by valid until",
         usage.order_by("valid_until", "id")[:26]),
        ("coupons_coupon", "Coupon Usage: by remaining", usage.order_by("-balance", "-id")[:26]),
        ("coupons_coupon", "Coupon Usage: one template + available + released since, by "
         "remaining", usage.filter(template_id=loyalty, status="available",
                                   released_at__gte=since).order_by("-balance", "-id")[:26]),
        ("coupons_coupon", "Sub-account: Coupons (available), by valid until",
         selectors.sub_account_coupons(sub_account=account, status="available")[:20]),
        ("coupons_coupon", "Sub-account: coupons per status",
         Coupon.objects.filter(sub_account_id=account).order_by().values_list("status")),
        ("coupons_coupon", "Posting: lock the available coupons of 500 accounts",
         coupons_for_update().filter(sub_account_id__in=accounts, status="available")),
        ("coupons_coupon", "Expiry: the next 1,000 available coupons past valid until",
         Coupon.objects.filter(status="available", valid_until__lt=today)
         .exclude(Exists(unposted)).order_by("pk").values("pk")[:1000]),
        ("coupons_coupon", "A coupon by its code (unique: the release's collision guard)",
         Coupon.objects.filter(code=Coupon.objects.filter(sub_account_id=account)
                               .values_list("code", flat=True)[0])),
        ("billing_deduction", "Sub-account: the deductions of a page of coupons",
         Deduction.objects.filter(coupon_id__in=one_account_coupons)
         .order_by("bill_date", "pk")),
        ("billing_deduction", "Posting: the deductions already on a batch's lines",
         Deduction.objects.filter(line_id__in=lines).values_list("line_id", "coupon_id")),
        ("billing_deduction", "Coupon Usage chart of a sub-account search",
         Deduction.objects.filter(partner=partner, coupon__in=Coupon.objects.filter(
             sub_account_id=account).values("pk"), bill_date__gte=today - dt.timedelta(days=60))
         .values("bill_date").order_by("bill_date")),
        ("billing_deduction", "Month close: a month's deductions per coupon, 500 accounts",
         Deduction.objects.filter(bill_date__gte=first, bill_date__lte=last,
                                  sub_account_id__in=accounts)
         .values("sub_account_id", "coupon_id").order_by("sub_account_id", "coupon_id")),
        ("billing_dailybill", "Sub-account: Bills, newest first",
         selectors.sub_account_daily_bills(sub_account=account)[:31]),
        ("billing_dailybill", "Sub-account: the daily bill of a day",
         DailyBill.objects.filter(sub_account_id=account, date=today - dt.timedelta(days=3))),
        ("billing_dailybill", "Posting: lock the outstanding bills of 500 accounts (never "
         "posted, or owing inside their coupons' validity)",
         daily_bills_for_update().filter(
             Q(sub_account_id__in=accounts) & (
                 Q(posted_at__isnull=True)
                 | Q(payable_amount__gt=0, date__gte=today - dt.timedelta(days=30),
                     date__lte=today)))),
        ("billing_dailybill", "Expiry: an account's unposted bill inside a coupon's validity",
         DailyBill.objects.filter(sub_account_id=account, posted_at__isnull=True,
                                  date__gte=today - dt.timedelta(days=90), date__lte=today)),
        ("billing_dailybill", "Bill run: the day's existing bills of 500 accounts",
         daily_bills_for_update().filter(date=today - dt.timedelta(days=1),
                                         sub_account_id__in=accounts)),
        ("billing_dailybill", "Month close: a month's daily bills",
         DailyBill.objects.filter(date__gte=first, date__lte=last).values("posted_at")),
        ("billing_dailybill", "Sweeper: bills never posted",
         DailyBill.objects.filter(posted_at__isnull=True,
                                  created_at__lt=timezone.now() - dt.timedelta(minutes=10))
         .order_by("pk").values("pk")),
        ("billing_dailybillline", "Posting: the owing lines of a batch's bills",
         DailyBillLine.objects.filter(bill_id__in=bills, payable_amount__gt=0)),
        ("billing_monthlybill", "Sub-account: Bills, monthly, newest first",
         selectors.sub_account_monthly_bills(sub_account=account)[:24]),
    ]


def _indexes() -> list[tuple[str, str, str, bool, int, str | None]]:
    """(table, index, definition, held by a constraint, size in bytes, constraint)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, pg_get_indexdef(i.oid), c.conname IS NOT NULL,
                   pg_relation_size(i.oid), c.conname
            FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.contype IN ('p', 'u')
            WHERE t.relname = ANY(%s) ORDER BY array_position(%s, t.relname::text), 2
            """,
            [TABLES, TABLES],
        )
        return cursor.fetchall()


def _time(sql: str, params: list) -> float:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()
        samples = []
        for _ in range(RUNS):
            start = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _used(plan_nodes: str, table_indexes: set[str]) -> list[str]:
    names = re.findall(r"(?:using|Bitmap Index Scan on) (\w+)", plan_nodes)
    return list(dict.fromkeys(n for n in names if n in table_indexes))


def _without(drop: list[tuple[str, str | None]], sql: str, params: list):
    """Plan and time of the statement with these indexes gone, in a transaction rolled
    back (DDL is transactional in PostgreSQL)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            for index, constraint in drop:
                if constraint:
                    table = next(t for t, i, *_r in _indexes() if i == index)
                    cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}" '
                                   "CASCADE")
                else:
                    cursor.execute(f'DROP INDEX "{index}"')
        nodes, exec_ms, _lines = explain(sql, params)
        seconds = _time(sql, params)
        transaction.set_rollback(True)
    return nodes, exec_ms, seconds


def run() -> Report:
    big, _small, _built = usage_pages.dataset()
    today = timezone.localdate()
    indexes = _indexes()
    by_table: dict[str, set[str]] = defaultdict(set)
    constraint_of = {}
    for table, index, _d, _c, _size, constraint in indexes:
        by_table[table].add(index)
        constraint_of[index] = constraint
    report = Report(
        name=NAME, title=TITLE,
        target="no bar (figures): every index earns its place, by the query it serves (its "
               "time with the index against the time without it) against what it costs every "
               "insert and every update that is not HOT (one entry each).",
        headers=["table", "query", "plan (with every index)", "ms", "without the index: plan",
                 "ms without", "benefit"],
    )
    served: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for table, label, qs in _queries(big, today):
        log(f"{NAME}: {label}")
        sql, params = _sql(qs)
        nodes, _exec_ms, _lines = explain(sql, params)
        seconds = _time(sql, params)
        used = _used(nodes, by_table[table])
        row = [f"`{table}`", label, nodes, f"{seconds * 1000:.2f}"]
        if used and not any(constraint_of[i] and constraint_of[i].endswith("_pkey")
                            for i in used):
            w_nodes, _w_exec, w_seconds = _without(
                [(i, constraint_of[i]) for i in used], sql, params)
            benefit = w_seconds / seconds
            row += [w_nodes, f"{w_seconds * 1000:.2f}", f"{benefit:,.1f}×"]
            for index in used:
                served[index].append((label, benefit))
        else:
            row += ["–", "–", "–"]
            for index in used:
                served[index].append((label, float("nan")))
        report.rows.append(row)

    summary = []
    for table, index, definition, held, size, constraint in indexes:
        columns = re.search(r"USING \w+ (.*)$", definition).group(1)
        queries = served.get(index, [])
        best = max((b for _q, b in queries if b == b), default=None)
        verdict = ("constraint" if held else
                   "serves " + "; ".join(q for q, _b in queries) if queries else "no query")
        summary.append([f"`{table}`", f"`{index}`", f"`{columns}`",
                        f"{size / 2**20:,.1f} MiB", constraint or "",
                        f"{best:,.1f}×" if best else "–", verdict])
    report.notes.append(
        "Every index of the tables (size at this dataset; *best benefit*: the largest "
        "time without / time with over the queries whose plan uses it):\n\n"
        + md_table(["table", "index", "columns", "size", "constraint", "best benefit",
                    "queries"], summary)
    )
    report.notes.append(
        f"Each query's SQL is the app's (the selector or queryset it runs, compiled by Django), "
        f"with values from the usage_pages dataset (1,000,000 coupons of one distributor, "
        f"270,000 deductions and daily bills, 9,000 monthly bills); *ms*: median of {RUNS} "
        "runs after one, executed and fetched on the psycopg cursor; *without*: the plan "
        "and time once the indexes the first plan used on that table are dropped, in a "
        "transaction rolled back afterwards (a constraint's index by dropping the "
        "constraint). A primary key is never dropped."
    )
    return report
