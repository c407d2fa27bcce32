"""Posting the deductions of daily bills through the real Celery task path, against one
set-based SQL transaction writing the same deductions and balances in the same run
(the "billing run" bar), at several bill counts for the scaling and the memory bar."""
from __future__ import annotations

import datetime as dt
import gc
import os
import random
import re
import time
from collections import defaultdict
from decimal import Decimal
from unittest import mock

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from bench import billing_baseline, data, write_cost
from bench.harness import (
    Check,
    Report,
    celery_broker,
    hotspots,
    log,
    md_table,
    mib,
    peak_memory,
    profile,
)
from billing import daily_bills, posting
from billing.models import DailyBill, DailyBillLine, Deduction, UsageRecord
from couponplatform.db import chunks
from coupons.models import Coupon
from coupons.services import coupon_template_create

NAME = "billing_run"
TITLE = "Post the deductions of daily bills through the Celery task path"
# Daily bills per run: two days of bills for half as many accounts, 3 lines each, at the
# 1×, 10× and 100× sizes of the scaling bar, the largest being its 100,000 bills
# (about 3 minutes in all on this 2-core machine); BENCH_BILLING_SIZES="2000,5000" is a
# quick look.
SIZES = [int(s) for s in os.environ.get("BENCH_BILLING_SIZES", "1000,10000,100000").split(",")]
MEMORY_SIZES = (1_000, 3_000)
DAYS = 2
PRODUCTS = ["compute", "storage", "network"]
RATIO = 3.0  # against the bare-table SQL
HOT_SHARE = 0.90  # of the coupons' updates in the task path
MEMORY_GROWTH = 1.5  # "flat": the peak at 3× the bills ≤ 1.5× the peak
SCALING = 1.3
PROFILE_BILLS = 300

# The coupons: three cash templates for all products; every account holds 1–3 of them, in
# the platform's order they differ by valid until, then release time.
TEMPLATES = [  # (name, face value, days of validity after the second bill day)
    ("Welcome credit", Decimal("10.00"), 20),
    ("Migration credit", Decimal("25.00"), 45),
    ("Partner promotion", Decimal("60.00"), 90),
]


def _days() -> list[dt.date]:
    today = timezone.localdate()
    return [today - dt.timedelta(days=DAYS - i) for i in range(DAYS)]


# For trying other storage of the coupon table than its migration's: BENCH_COUPON_FILLFACTOR
# (10–100) is set on `coupons_coupon` before any coupon is written.
FILLFACTOR = os.environ.get("BENCH_COUPON_FILLFACTOR")


def coupon_fillfactor() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce((SELECT option_value::int FROM pg_options_to_table("
                       "reloptions) WHERE option_name = 'fillfactor'), 100) FROM pg_class "
                       "WHERE oid = 'coupons_coupon'::regclass")
        return cursor.fetchone()[0]


def _setup_common():
    if FILLFACTOR:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE coupons_coupon SET (fillfactor = {int(FILLFACTOR)})")
    partner, user = data.make_partner("Bench Billing Distribution", requires_bd_approval=False)
    products = data.make_products(PRODUCTS)
    templates = [
        coupon_template_create(
            partner=partner, acting_user=user, name=name, kind="cash", currency="USD",
            face_value=value, cost_bearer="partner", issue_limit="unlimited",
            validity_type="relative", valid_days=400,
        )
        for name, value, _days_valid in TEMPLATES
    ]
    return partner, user, products, templates


def _dataset(partner, user, products, templates, bills: int, prefix: str) -> list[int]:
    """`bills // DAYS` accounts with their coupons and DAYS days of usage on 3 products.
    The same seed for every dataset of a size, so the task path and the SQL
    start from the same coupons and usage (on different accounts)."""
    accounts = [pk for pk, _a in data.make_sub_accounts(partner, bills // DAYS, prefix=prefix,
                                                        seed=bills)]
    rng = random.Random(bills)
    days = _days()
    holders: dict[int, list[int]] = defaultdict(list)
    for pk in accounts:
        for t in sorted(rng.sample(range(len(templates)), rng.randint(1, 3))):
            holders[t].append(pk)
    base = timezone.now() - dt.timedelta(days=40)
    for t, (template, (_name, _value, days_valid)) in enumerate(
            zip(templates, TEMPLATES, strict=True)):
        offsets = [rng.randint(0, 30 * 24 * 60) for _ in holders[t]]
        data.issue_coupons(
            template, user, holders[t],
            released_at=lambda i, offsets=offsets: base + dt.timedelta(minutes=offsets[i]),
            valid_from=days[0] - dt.timedelta(days=35),
            valid_until=days[-1] + dt.timedelta(days=days_valid),
        )
    cents = [rng.randint(50, 1500) for _ in range(len(accounts) * DAYS * len(products))]
    usage = iter(cents)
    with transaction.atomic():
        data.copy_rows(
            UsageRecord, ["sub_account", "usage_date", "product", "amount", "currency"],
            ((pk, day, product.pk, Decimal(next(usage)) / 100, "USD")
             for pk in accounts for day in days for product in products),
        )
    return accounts


def _bill_ids(accounts: list[int]) -> list[list[int]]:
    """The datasets' bills per day, in pk order (the order the day's run enqueues them)."""
    return [
        list(DailyBill.objects.filter(sub_account_id__in=accounts, date=day)
             .order_by("pk").values_list("pk", flat=True))
        for day in _days()
    ]


# ---------------------------------------------------------------------------------------
# The three ways of posting


def _task_path(bill_ids: list[list[int]]) -> None:
    """As billing runs in production: each day's bill run enqueues one posting task per
    bill (`bills_enqueue_posting`); here Celery runs each task at once, in-process."""
    with celery_broker("eager"):
        for day_ids in bill_ids:
            posting.bills_enqueue_posting(bill_ids=day_ids)


# ---------------------------------------------------------------------------------------
# Checking that the two wrote the same


def _outcome(accounts: list[int]) -> dict:
    """What a posting left, comparable across datasets: each deduction by (account's
    ordinal, bill date, product, coupon's template and validity), and the totals."""
    order = {pk: i for i, pk in enumerate(sorted(accounts))}
    rows = sorted(
        (order[sub], day, product, template, until, amount)
        for sub, day, product, template, until, amount in
        Deduction.objects.filter(sub_account_id__in=accounts).values_list(
            "sub_account_id", "bill_date", "line__product__code", "coupon__template__name",
            "coupon__valid_until", "amount")
    )
    coupons = Coupon.objects.filter(sub_account_id__in=accounts).aggregate(
        balance=Sum("balance"), used_up=Count("pk", filter=Q(status="used_up")))
    bills = DailyBill.objects.filter(sub_account_id__in=accounts).aggregate(
        payable=Sum("payable_amount"), deducted=Sum("deduction_amount"),
        unposted=Count("pk", filter=Q(posted_at__isnull=True)))
    lines = DailyBillLine.objects.filter(bill__sub_account_id__in=accounts).aggregate(
        deducted=Sum("deduction_amount"))
    return {
        "rows": rows, "count": len(rows), "sum": sum((r[-1] for r in rows), Decimal("0")),
        "balance": coupons["balance"], "used_up": coupons["used_up"],
        "bill_payable": bills["payable"], "bill_deducted": bills["deducted"],
        "line_deducted": lines["deducted"], "unposted": bills["unposted"],
    }


def _same(a: dict, b: dict) -> list[str]:
    return [k for k in a if a[k] != b[k]]


# ---------------------------------------------------------------------------------------


def _per_bill_breakdown(bill_ids: list[int]):
    """Queries and SQL time per posting task over a sample of bills, and a profile."""
    sample = bill_ids[:PROFILE_BILLS]
    n = len(sample) // 2
    count: dict[str, int] = defaultdict(int)
    spent: dict[str, float] = defaultdict(float)

    def kind_of(sql: str) -> str:
        if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            return "SAVEPOINT / RELEASE"
        table = next((t.strip('"') for t in re.findall(r'"\w+"', sql) if "_" in t), "")
        return f"{sql.split()[0].upper()} {table}".strip()

    def wrapper(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            count[kind_of(sql)] += 1
            spent[kind_of(sql)] += time.perf_counter() - start

    commit = connection._commit

    def timed_commit(*args, **kwargs):
        start = time.perf_counter()
        try:
            return commit(*args, **kwargs)
        finally:
            count["COMMIT"] += 1
            spent["COMMIT"] += time.perf_counter() - start

    with connection.execute_wrapper(wrapper), \
            mock.patch.object(connection, "_commit", timed_commit):
        start = time.perf_counter()
        _task_path([sample[:n]])
        total = time.perf_counter() - start
    sql_total = sum(spent.values())
    rows = [[k, f"{count[k] / n:.1f}", f"{spent[k] / n * 1000:.2f}"]
            for k in sorted(count, key=lambda k: -spent[k])]
    summary = [
        ["bills posted", f"{n:,}"],
        ["statements per bill (commit included)", f"{sum(count.values()) / n:.1f}"],
        ["time per bill", f"{total / n * 1000:.2f} ms"],
        ["… of which waiting for PostgreSQL (statements and commit)",
         f"{sql_total / n * 1000:.2f} ms"],
        ["… of which in Python", f"{(total - sql_total) / n * 1000:.2f} ms"],
    ]
    stats = profile(lambda: _task_path([sample[len(sample) // 2:]]))
    return summary, rows, stats, len(sample) - n


def _made(partner, user, products, templates, size: int, prefixes: list[str]):
    """Datasets of `size` bills, one per prefix, with their daily bills made."""
    sets = [_dataset(partner, user, products, templates, size, p) for p in prefixes]
    start = time.perf_counter()
    for day in _days():
        daily_bills.daily_bills_make(bill_date=day, enqueue_posting=False)
    return sets, time.perf_counter() - start


def run() -> Report:
    report = Report(
        name=NAME, title=TITLE,
        target=f"the task path ≤ {RATIO:.0f}× one set-based SQL transaction writing the same "
               "deductions and balances into bare copies of the tables (no index, constraint, "
               "foreign key or trigger: the physical limit), all producing the same "
               f"deductions (asserted); at least {HOT_SHARE:.0%} of the coupons' updates in "
               "the task path HOT (heap-only: no index entry written); peak memory flat in "
               f"the bill count (tracemalloc peak at the larger size ≤ {MEMORY_GROWTH}× the "
               f"peak at the smaller); time per bill within {SCALING}× across the sizes. "
               "Beside it, not a target: the same SQL into the real tables.",
        headers=["daily bills", "accounts", "coupons", "deductions", "deducted USD",
                 "bill run (2 datasets)", "task path", "per bill", "bare SQL",
                 "real-table SQL", "task / bare SQL", "task / real-table SQL",
                 "HOT share of coupon updates (task path)", "WAL per deduction (task path)",
                 ""],
    )
    partner, user, products, templates = _setup_common()
    made = {}
    for size in SIZES:
        log(f"{NAME}: {size:,} bills — data for the task path and the SQL")
        t0 = time.perf_counter()
        (task_set, sql_set), bill_run = _made(
            partner, user, products, templates, size, [f"T{size}-", f"S{size}-"])
        sets = {"task": task_set, "sql": sql_set}
        bills = {kind: _bill_ids(accounts) for kind, accounts in sets.items()}
        assert sum(map(len, bills["task"])) == size, sum(map(len, bills["task"]))
        # The bare tables hold the SQL dataset as it is before any posting.
        bare = billing_baseline.bare_tables(sql_set, str(size))
        made[size] = dict(sets=sets, bills=bills, bill_run=bill_run, bare_tables=bare)
        log(f"{NAME}: {size:,} bills — data ready in {time.perf_counter() - t0:.0f} s")
    data.analyze()

    # Per size, the bare and the real-table SQL one after the other, in alternating order.
    costs: dict[str, dict[int, write_cost.WriteCost]] = {"bare": {}, "sql": {}, "task": {}}
    for n, size in enumerate(SIZES):
        runs = [("bare", lambda size=size: billing_baseline.baseline(
                    made[size]["sets"]["sql"], made[size]["bare_tables"])),
                ("sql", lambda size=size: billing_baseline.baseline(made[size]["sets"]["sql"]))]
        for kind, fn in runs if n % 2 else runs[::-1]:
            log(f"{NAME}: {size:,} bills — {kind} set-based SQL")
            gc.collect()
            mark = write_cost.begin()
            start = time.perf_counter()
            fn()
            made[size][kind] = time.perf_counter() - start
            costs[kind][size] = write_cost.end(mark)

    # The task path of all sizes interleaved, batch by batch (the batches the bill run
    # would publish, each day's in order), always the size least far along next: a change
    # of load on the shared machine then touches every size alike, so the scaling check
    # compares like with like. What each batch writes is read between the batches.
    log(f"{NAME}: task path, {', '.join(f'{s:,}' for s in SIZES)} bills interleaved")
    queues = {
        size: [list(batch) for day_ids in made[size]["bills"]["task"]
               for batch in chunks(day_ids, posting.POST_BATCH)]
        for size in SIZES
    }
    done = dict.fromkeys(SIZES, 0)
    spent = dict.fromkeys(SIZES, 0.0)
    costs["task"] = {size: write_cost.WriteCost() for size in SIZES}
    # The batches whose WAL could be read back (a checkpoint may recycle a batch's first
    # segment before it is read, on a server others write to): WAL per deduction is theirs.
    costs["task_wal"] = {size: write_cost.WriteCost() for size in SIZES}
    batches = {size: [0, 0] for size in SIZES}  # read back, all
    gc.collect()
    while True:
        left = [size for size in SIZES if done[size] < len(queues[size])]
        if not left:
            break
        size = min(left, key=lambda s: done[s] / len(queues[s]))
        mark = write_cost.begin()
        start = time.perf_counter()
        _task_path([queues[size][done[size]]])
        spent[size] += time.perf_counter() - start
        part = write_cost.end(mark)
        write_cost.add(costs["task"][size], part)
        batches[size][1] += 1
        if part.attributed:
            write_cost.add(costs["task_wal"][size], part)
            batches[size][0] += 1
        done[size] += 1

    results = []
    for size in SIZES:
        sets = made[size]["sets"]
        outcome = {kind: _outcome(accounts) for kind, accounts in sets.items()}
        differ = _same(outcome["task"], outcome["sql"])
        assert not differ, f"the SQL baseline wrote other deductions: {differ}"
        assert outcome["task"]["unposted"] == 0
        bare = billing_baseline.bare_outcome(made[size]["bare_tables"])
        differ = [k for k, v in bare.items() if outcome["sql"][k] != v]
        assert not differ, f"the bare-table SQL wrote other deductions: {differ}"
        coupons = Coupon.objects.filter(sub_account_id__in=sets["task"]).count()
        results.append(dict(size=size, accounts=len(sets["task"]), coupons=coupons,
                            outcome=outcome["task"], bill_run=made[size]["bill_run"],
                            task=spent[size], sql=made[size]["sql"], bare=made[size]["bare"]))
        log(f"{NAME}: {size:,} bills — task {spent[size]:.1f} s, SQL {made[size]['sql']:.1f} s, "
            f"bare SQL {made[size]['bare']:.1f} s")

    log(f"{NAME}: peak memory of the task path at {MEMORY_SIZES[0]:,} and "
        f"{MEMORY_SIZES[1]:,} bills (tracemalloc)")
    memory = []
    for size in MEMORY_SIZES:
        (accounts,), _ = _made(partner, user, products, templates, size, [f"M{size}-"])
        memory.append(peak_memory(lambda accounts=accounts: _task_path(_bill_ids(accounts))))
    log(f"{NAME}: per-bill breakdown and profile")
    (accounts,), _ = _made(partner, user, products, templates, 2 * PROFILE_BILLS, ["Q-"])
    summary, kinds, stats, profiled = _per_bill_breakdown(
        [pk for day_ids in _bill_ids(accounts) for pk in day_ids])

    for r in results:
        o = r["outcome"]
        ratio = r["task"] / r["bare"]
        task_cost = costs["task"][r["size"]]
        task_wal = costs["task_wal"][r["size"]]
        wal_deductions = task_wal.rows.get("billing_deduction", (0,))[0]
        hot = task_cost.hot_share("coupons_coupon") or 0.0
        checks = [
            Check(f"{r['size']:,} bills: task path / bare-table SQL", ratio, RATIO, "×"),
            # "≥ HOT_SHARE" as "the non-HOT share ≤ 1 − HOT_SHARE".
            Check(f"{r['size']:,} bills: coupon updates not HOT in the task path "
                  f"(HOT {hot:.1%})", round((1 - hot) * 100, 1),
                  round((1 - HOT_SHARE) * 100, 1), "%"),
        ]
        report.checks += checks
        report.rows.append([
            f"{r['size']:,}", f"{r['accounts']:,}", f"{r['coupons']:,}", f"{o['count']:,}",
            f"{o['sum']:,}", f"{r['bill_run']:.1f} s", f"{r['task']:.1f} s",
            f"{r['task'] / r['size'] * 1000:.2f} ms", f"{r['bare']:.2f} s", f"{r['sql']:.2f} s",
            f"{ratio:.1f}×", f"{r['task'] / r['sql']:.1f}×", f"{hot:.0%}",
            write_cost.wal_cells(task_wal, wal_deductions)[0],
            "PASS" if all(c.passed for c in checks) else "MISS",
        ])
    report.notes.append(_write_cost_note(results, costs, batches))
    per = [r["task"] / r["size"] for r in results]
    report.checks.append(Check(
        f"scaling: time per bill, slowest / fastest of {', '.join(f'{s:,}' for s in SIZES)} "
        "bills", max(per) / min(per), SCALING, "×"))
    report.checks.append(Check(
        f"memory: tracemalloc peak of the task path at {MEMORY_SIZES[1]:,} / at "
        f"{MEMORY_SIZES[0]:,} bills ({mib(memory[1])} / {mib(memory[0])})",
        memory[1] / memory[0], MEMORY_GROWTH, "×"))
    schema = os.environ.get("BENCH_MIGRATE_TO")
    report.notes.append(
        f"The coupon table's fillfactor in this run: {coupon_fillfactor()}"
        + (" (BENCH_COUPON_FILLFACTOR)." if FILLFACTOR else " (its migrations').")
        + (f" Schema: the migrations up to {schema} (BENCH_MIGRATE_TO)." if schema else "")
    )
    report.notes.append(
        f"**Sizes.** {', '.join(f'{s:,}' for s in SIZES)} bills"
        + (" — the bar's 100,000 and its 1×, 10×, 100× scaling sizes."
           if max(SIZES) >= 100_000 else
           " (set by BENCH_BILLING_SIZES; the bar asks for 100,000, the default).")
    )
    report.notes.append(
        f"Setup, per size: one distributor; two datasets of the same shape (same seed, "
        f"different accounts) — one for the task path, one for the set-based SQL — each of "
        f"*bills ÷ {DAYS}* accounts by COPY, each account holding 1–3 "
        "cash coupons for all products (three templates: 10.00, 25.00 and 60.00 USD, valid "
        "until 20, 45 and 90 days after the second bill day, released at random times over "
        f"a month), and usage on 3 products on each of the last {DAYS} days (0.50–15.00 USD a "
        "record) by COPY. The daily bills are made by `daily_bills_make(bill_date=…, "
        "enqueue_posting=False)` for each day (the *bill run* column: both days over the "
        "two datasets, 2 × the bills; not a target). Then VACUUM ANALYZE, and each of the "
        "two posts its dataset's bills once:\n"
        "  - **task path**: the batches the bill run publishes (each day's bills in order, "
        f"{posting.POST_BATCH} a batch), each through `billing.posting.bills_enqueue_posting("
        "bill_ids=<the batch>)` with Celery eager (`task_always_eager`, as in the "
        f"embedded mode): one `bills_post_task` per {posting.POST_BATCH} bills, run "
        "in-process by Celery (`apply`), each one transaction of `bills_post`: the batch's "
        "accounts' coupons and bills locked, `allocate()` per account, the deductions by "
        "COPY and the coupons, lines and bills each by one `UPDATE … FROM (VALUES …)`;\n"
        "  - **bare SQL**: one transaction of five statements (`BASELINE_SQL` in "
        "`bench/billing_baseline.py`) over bare copies of the coupons, daily bills and lines "
        "of the SQL dataset (copied before any posting, same ids and values) and empty bare "
        "deduction and audit tables, each `CREATE TABLE … (LIKE … INCLUDING DEFAULTS "
        "INCLUDING IDENTITY)`: no index, constraint, foreign key or trigger: the "
        "allocation as interval overlaps of running sums per "
        "account (lines in bill date, product code, id order; coupons in valid until, "
        "release, id order — PRODUCT §7's rule for the cash coupons for all products the "
        "data holds), the deduction rows, the coupons' balances and used-up statuses with "
        "their audit rows, the lines, and the bills' totals and posting mark;\n"
        "  - **real-table SQL**: the same five statements on the real tables of the SQL "
        "dataset (indexes, constraints, foreign keys, statistics triggers).\n"
        "The two SQL baselines of each size run first, one after the other (in alternating "
        "order from size to size), one size after the other; then the task "
        "paths of all sizes run interleaved batch by batch, the size least far along next, "
        "so that a change of load on the machine falls on every size alike.\n"
        "After each size the two datasets are compared: the same deductions row for row "
        "(by account ordinal, day, product, coupon template and validity, amount), the same "
        "sum, the same coupon balances and used-up count, the same line and bill totals, and "
        "every bill posted — asserted, and the bare tables' totals against the real-table "
        "SQL's; the run stops otherwise.\n"
        f"Memory: tracemalloc's peak of Python allocations over the whole task path, for "
        f"{MEMORY_SIZES[0]:,} and for {MEMORY_SIZES[1]:,} further bills of the same shape "
        "(a separate run: tracing slows Python)."
    )
    report.notes.append(
        f"Where a posting task spends its time ({profiled:,} fresh bills of the same shape "
        "through the same eager task path, each statement and commit timed; then "
        f"{profiled:,} more under cProfile):\n\n"
        + md_table(["", ""], summary) + "\n\nStatements per bill:\n\n"
        + md_table(["statement", "per bill", "ms per bill"], kinds)
        + "\n\nPython hot spots (cProfile, by own time per bill; the profiler inflates "
        "Python, so read the shares):\n\n"
        + md_table(["function", "calls per bill", "own ms per bill", "cumulative ms per bill",
                    "share"], hotspots(stats, per=profiled))
    )
    report.notes.append(
        f"Before batching (one task and one transaction per bill, per-row updates; "
        "measured 2026-11-26 on this machine, same sizes) the task path was 65–79× the "
        "set-based SQL at about 15 ms a bill: every bill paid its own round trips and its "
        "own commit. Batching "
        f"{posting.POST_BATCH} bills a transaction with set-based writes brings it to the "
        "figures above; what remains is Python: building the allocation's inputs and the "
        "pure allocation per account, which the set-based SQL does inside PostgreSQL."
        "\n\nMemory: the task path holds the day's bill ids and one batch's rows at a time; "
        "what tracemalloc's peak sees beyond that is the garbage of recent tasks' queries "
        "awaiting Python's cyclic collector"
        + (", which does not grow with the bill count." if report.checks[-1].passed else
           f"; it grew from {mib(memory[0])} to {mib(memory[1])} between "
           f"{MEMORY_SIZES[0]:,} and {MEMORY_SIZES[1]:,} bills, the collector running "
           "less often than the bills arrive.")
    )
    return report


def _write_cost_note(results: list[dict], costs: dict, batches: dict) -> str:
    """Per deduction: what the task path and the two SQL baselines wrote, at every size; and
    the task path's tables at the largest size."""
    rows = []
    for r in results:
        n = r["outcome"]["count"]
        for kind, label in (("task", "task path"), ("sql", "real-table SQL"),
                            ("bare", "bare SQL")):
            cost = costs[kind][r["size"]]
            # Index entries and WAL of the task path: over its batches read back.
            wal_cost = costs["task_wal"][r["size"]] if kind == "task" else cost
            n = (wal_cost.rows.get("billing_deduction", (0,))[0] if kind == "task"
                 else r["outcome"]["count"])
            hot = cost.hot_share(
                "coupons_coupon" if kind != "bare" else f"bench_bare_coupon_{r['size']}")
            attributed = wal_cost.attributed and n
            done, all_ = batches[r["size"]]
            rows.append([
                f"{r['size']:,}", label + (f" ({done} of {all_} batches read back)"
                                           if kind == "task" and done < all_ else ""),
                str(len(wal_cost.indexes_touched())) if attributed else "–",
                f"{wal_cost.index_entries() / n:.1f}" if attributed else "–",
                *write_cost.wal_cells(wal_cost, n or 1),
                "–" if hot is None else f"{hot:.0%}",
            ])
    largest = results[-1]
    shown = costs["task_wal"][largest["size"]]
    headers, by_table = write_cost.rows_table(
        shown, unit="deduction", n=shown.rows.get("billing_deduction", (0,))[0] or 1)
    return "\n".join([
        "**Write amplification** per deduction (rows from `pg_stat_user_tables`, read after "
        "`pg_stat_force_next_flush()` and `pg_stat_clear_snapshot()`; index entries and WAL "
        "from this database's WAL records between `pg_current_wal_lsn()` before and after, "
        "read with pg_walinspect, around each task-path batch and each SQL transaction; "
        "bench/write_cost.py; \"–\": the range's WAL was recycled at a checkpoint before it "
        "could be read back, which a long transaction on a busy server meets). *HOT share*: "
        "of the coupon rows updated, those updated "
        "heap-only, without a new entry in any index (`n_tup_hot_upd / n_tup_upd`):", "",
        md_table(["daily bills", "writer", "indexes written", "index entries per deduction",
                  "WAL per deduction without full-page images", "WAL with them",
                  "raw LSN distance (every database)", "HOT share of coupon updates"], rows),
        "", f"What the task path writes at {largest['size']:,} bills, by table (per "
        "deduction; the batches read back):", "", md_table(headers, by_table),
    ])
