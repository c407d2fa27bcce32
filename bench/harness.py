"""What every benchmark shares: Django on a throwaway PostgreSQL database, timing with
percentiles, peak memory, the console table and the sections of docs/BENCHMARKS.md."""
from __future__ import annotations

import cProfile
import datetime as dt
import gc
import os
import platform
import pstats
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
# Every database a run creates is marked so; a run drops only the database it created, and
# reuses (--reuse) only one that carries the mark.
DB_MARK = "couponplatform benchmark database"
RERUN = (
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench "
    'make bench BENCH_ARGS="{args}"'
)


class BenchError(SystemExit):
    """A benchmark can not run here (wrong database, missing server): exit with a message."""


# ---------------------------------------------------------------------------------------
# Django and the run's own database


def setup_django() -> None:
    """Configure Django for PostgreSQL, with DEBUG off as in production."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        raise BenchError(
            "The benchmarks run on PostgreSQL only: set DATABASE_URL, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench",
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "couponplatform.settings")
    import django
    from django.conf import settings

    django.setup()
    # Not setup_test_environment(): it instruments template rendering and makes the test
    # client copy every template context, which the production path does not pay for.
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def run_database_name(base: str, suffix: str | None = None) -> str:
    """The run's own database: DATABASE_URL's name, "_bench" (unless the name has it
    already) and a suffix of this run (BENCH_DB_SUFFIX, else the time and the process id),
    so two runs on one server never meet in one database."""
    suffix = suffix or os.environ.get("BENCH_DB_SUFFIX") or (
        f"{dt.datetime.now(dt.UTC):%m%d%H%M%S}_{os.getpid()}")
    if not re.fullmatch(r"\w+", suffix):
        raise BenchError(f"BENCH_DB_SUFFIX may hold letters, digits and _ only; got {suffix!r}.")
    stem = base if "bench" in base else f"{base}_bench"
    name = f"{stem}_{suffix}".lower()
    if len(name) > 63:
        raise BenchError(f"Database name {name!r} is longer than PostgreSQL's 63 characters.")
    return name


def _admin_connection():
    """An autocommit connection to the server's `postgres` database, for CREATE and DROP."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(autocommit=True, **params)


def _database_mark(admin, name: str) -> str | None:
    """The comment of database `name`, "" when it has none, None when it does not exist."""
    row = admin.execute(
        "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
        "WHERE datname = %s", [name],
    ).fetchone()
    return None if row is None else row[0]


def _use_database(name: str) -> None:
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


@contextmanager
def run_database(*, reuse: str | None = None, keep: bool = False) -> Iterator[str]:
    """The run's database, migrated: a new one of its own name (`run_database_name`),
    created here and dropped after the run unless `keep`; or, with `reuse`, an existing
    one an earlier run created and kept (checked by its mark), never dropped.

    A name that already exists is never taken over or dropped: the run stops instead.
    """
    from django.core.management import call_command
    from django.db import connection, connections
    from psycopg import sql

    base = str(connection.settings_dict.get("NAME") or "cp_bench")
    created = None
    with _admin_connection() as admin:
        if reuse:
            mark = _database_mark(admin, reuse)
            if mark is None or not mark.startswith(DB_MARK):
                raise BenchError(f"--reuse {reuse}: no database of that name made by a "
                                 "benchmark run (its comment must start with "
                                 f"{DB_MARK!r}).")
            name = reuse
        else:
            name = run_database_name(base)
            if _database_mark(admin, name) is not None:
                raise BenchError(f"Database {name} exists already; it is not this run's, so "
                                 "it is left alone. Set another BENCH_DB_SUFFIX.")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            created = name
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name),
                sql.Literal(f"{DB_MARK}, created {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} "
                            f"UTC by process {os.getpid()}")))
    try:
        _use_database(name)
        call_command("migrate", verbosity=0, interactive=False)
        # BENCH_MIGRATE_TO="coupons:0005 billing:0003": an earlier schema of those apps, to
        # measure the code against the indexes it had before (their migrations reversed).
        for target in os.environ.get("BENCH_MIGRATE_TO", "").split():
            app, _, migration = target.partition(":")
            call_command("migrate", app, migration, verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            # WAL attribution (write_cost.py); a contrib module shipped with PostgreSQL 15.
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_walinspect'")
            if cursor.fetchone():
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        yield name
    finally:
        connections.close_all()
        if created and not keep:
            with _admin_connection() as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(created)))
        elif created:
            log(f"kept database {created}: rerun on it with --reuse {created}")


def machine() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0].split()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import django

    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count()),
        "cpu": cpu,
        "postgresql": pg,
        "python": platform.python_version(),
        "django": django.get_version(),
    }


# ---------------------------------------------------------------------------------------
# Timing


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Timing:
    """Wall-clock samples in seconds, and the CPU time this process spent in each (what
    the Python side costs, whatever the load of the machine)."""

    samples: list[float]
    cpu: list[float] = field(default_factory=list)

    @property
    def cpu_p50(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def n(self) -> int:
        return len(self.samples)


def measure(fn: Callable[[], object], *, runs: int, warmup: int = 3) -> Timing:
    """Time fn `runs` times after `warmup` untimed calls."""
    return measure_interleaved({"fn": fn}, runs=runs, warmup=warmup)["fn"]


def measure_interleaved(
    fns: dict[str, Callable[[], object]], *, runs: int, warmup: int = 3,
) -> dict[str, Timing]:
    """Time several functions in turns (the order rotating each round), so a change of
    load on a shared machine touches them alike and their ratio stays fair.

    Objects alive before the runs are frozen out of the garbage collector, so a collection
    inside a sample costs what it would in a fresh worker, not a scan of the whole setup.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    gc.collect()
    gc.freeze()
    names = list(fns)
    timings = {name: Timing([]) for name in names}
    try:
        for i in range(runs):
            for name in names[i % len(names):] + names[:i % len(names)]:
                cpu, start = time.process_time(), time.perf_counter()
                fns[name]()
                timings[name].samples.append(time.perf_counter() - start)
                timings[name].cpu.append(time.process_time() - cpu)
    finally:
        gc.unfreeze()
    return timings


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while fn runs (tracemalloc; slows fn, so never timed)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def profile(fn: Callable[[], object], *, runs: int = 1) -> pstats.Stats:
    """cProfile of `runs` calls of fn (profiling slows Python code: read shares, not times)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for _ in range(runs):
            fn()
    finally:
        profiler.disable()
    return pstats.Stats(profiler)


def cumtime(stats: pstats.Stats, path_part: str, func: str) -> float:
    """Cumulative seconds of the functions named `func` in files whose path contains
    `path_part` ("/" separated, e.g. "coupons/services.py")."""
    total = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        if name == func and path_part in filename.replace(os.sep, "/"):
            total += ct
    return total


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------------------
# Reports


@dataclass
class Check:
    """One target: `value` must be ≤ `limit`."""

    label: str
    value: float
    limit: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.limit

    def describe(self) -> str:
        fmt = (lambda v: f"{v:.2f}×") if self.unit == "×" else (lambda v: f"{v:.1f} {self.unit}")
        if isinstance(self.value, int) and isinstance(self.limit, int):
            fmt = lambda v: f"{v:,} {self.unit}".rstrip()  # noqa: E731
        verdict = "PASS" if self.passed else "MISS"
        return f"{self.label}: {fmt(self.value)} (target ≤ {fmt(self.limit)}) — {verdict}"


@dataclass
class Report:
    name: str
    title: str
    target: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    # Markdown paragraphs after the table: setup, breakdowns, plans, findings.
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # 1-minute load average before and after: figures from a busy machine are noisier.
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def print_report(report: Report) -> None:
    print(f"\n== {report.name}: {report.title} ({report.seconds:.0f} s, load average "
          f"{report.load[0]:.1f} → {report.load[1]:.1f})")
    print(text_table(report.headers, report.rows))
    for check in report.checks:
        print("  " + check.describe())
    print(f"  => {report.verdict}")


DOC_HEADER = """# Benchmarks

Each benchmark measures one piece of work against a baseline in the same run, on the same
machine and database, as the project's performance bars ask. The sections below
are rewritten by the benchmark runner: do not edit them by hand, rerun instead.

```
# all benchmarks (PostgreSQL only; each run creates a database of its own, named after
# DATABASE_URL's with "_bench" and a suffix of the run, and drops it after the run)
DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench make bench
# some of them
DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench make bench BENCH_ARGS="issue_search"
.venv/bin/python -m bench.run --list
```

Times are wall-clock milliseconds (`time.perf_counter`), p50/p95 over the stated runs after
warm-up runs. PASS/MISS compares each figure with its bar's target.
"""


def section_markdown(report: Report, info: dict[str, str], when: str) -> str:
    lines = [
        f"<!-- bench:{report.name} -->",
        f"## {report.name}: {report.title}",
        "",
        f"**{report.verdict}** · run {when} · {info['nproc']} CPUs ({info['cpu']}) · "
        f"PostgreSQL {info['postgresql']} · Python {info['python']} · Django {info['django']} "
        f"· load average {report.load[0]:.1f} before, {report.load[1]:.1f} after "
        f"· took {report.seconds:.0f} s",
        "",
        f"Rerun: `{RERUN.format(args=report.name)}`",
        "",
        f"Target: {report.target}",
        "",
        md_table(report.headers, report.rows),
        "",
        *[f"- {c.describe()}" for c in report.checks],
        "",
    ]
    for note in report.notes:
        lines += [note.rstrip(), ""]
    lines.append(f"<!-- /bench:{report.name} -->")
    return "\n".join(lines)


def write_section(report: Report, info: dict[str, str], order: list[str]) -> None:
    """Replace the benchmark's section in docs/BENCHMARKS.md (or add it in registry order)."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    body = section_markdown(report, info, when)
    pattern = re.compile(
        rf"<!-- bench:{re.escape(report.name)} -->.*?<!-- /bench:{re.escape(report.name)} -->",
        re.S,
    )
    if pattern.search(text):
        text = pattern.sub(lambda _m: body, text)
    else:
        # Before the first existing section of a benchmark that comes later in the registry.
        later = order[order.index(report.name) + 1:] if report.name in order else []
        positions = [text.find(f"<!-- bench:{name} -->") for name in later]
        positions = [p for p in positions if p >= 0]
        if positions:
            at = min(positions)
            text = text[:at] + body + "\n\n" + text[at:]
        else:
            text = text.rstrip() + "\n\n" + body + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def loadavg() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Shared by the submit, release, billing run, issue search and usage page benchmarks


def short_path(filename: str) -> str:
    """A profiler's file name without the machine's directories."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    root = str(ROOT).replace("\\", "/") + "/"
    if path.startswith(root):
        return path[len(root):]
    return "/".join(path.split("/")[-2:])


def hotspots(stats: pstats.Stats, *, top: int = 12, per: int = 1) -> list[list[str]]:
    """Rows (function, calls, own ms, cumulative ms, share) of the functions with the most
    own time; `per` divides the times (e.g. the number of profiled runs)."""
    total = stats.total_tt
    ranked = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cum, _callers) in ranked:
        rows.append([f"`{func}` ({short_path(filename)}:{line})", f"{ncalls // per:,}",
                     ms(tottime / per), ms(cum / per), f"{tottime / total:.0%}"])
    return rows


def explain(sql: str, params=None) -> tuple[str, float, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement: its scan and join nodes (first
    occurrence each), the execution time in ms, and the whole plan's lines."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        lines = [r[0] for r in cursor.fetchall()]
    nodes: list[str] = []
    for line in lines:
        m = re.search(r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan"
                      r"|Bitmap Index Scan|Hash Join|Merge Join|Nested Loop|Hash Semi Join"
                      r"|Hash Right Semi Join|Sort|Incremental Sort|HashAggregate|GroupAggregate"
                      r"|Gather Merge|Gather)(?: Backward)?(?: using \w+)?(?: on \w+)?)", line)
        if m and m.group(1) not in nodes:
            nodes.append(m.group(1))
    exec_ms = next((float(re.findall(r"[\d.]+", line)[0]) for line in lines
                    if line.startswith("Execution Time")), 0.0)
    return ", ".join(nodes) or lines[0].split("(")[0].strip(), exec_ms, lines


def timed_instrumented(
    fn: Callable[[], object],
    *,
    body: str,
    sql_kinds: list[tuple[str, str]],
    patches: list[tuple[object, str, str]],
) -> tuple[float, dict[str, float], dict[tuple[str, str], float]]:
    """One timed call of fn with the service's steps timed by wrapping what it calls (its
    code is unchanged), and each SQL statement under the step that ran it.

    `patches` are (object, attribute, label): each attribute is replaced, during the call,
    by a wrapper adding its seconds to `phases[label]`. A statement's seconds go to
    `sql[(step, kind)]`, the step being the innermost wrapped call running (else `body`) and
    the kind the label of the first pattern of `sql_kinds` found in it (else "other").
    Returns (seconds of the whole call, phases, sql)."""
    from django.db import connection

    phases: dict[str, float] = {}
    sql: dict[tuple[str, str], float] = {}
    current = [body]

    def wrap(label, fn):
        def inner(*args, **kwargs):
            current.append(label)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - start
                current.pop()
        return inner

    def sql_wrapper(execute, statement, params, many, context):
        start = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            kind = next((k for pat, k in sql_kinds if re.search(pat, statement)), "other")
            key = (current[-1], kind)
            sql[key] = sql.get(key, 0.0) + time.perf_counter() - start

    with ExitStack() as stack:
        for target, attr, label in patches:
            stack.enter_context(
                mock.patch.object(target, attr, wrap(label, getattr(target, attr))),
            )
        stack.enter_context(connection.execute_wrapper(sql_wrapper))
        total, _ = timed(fn)
    return total, phases, sql


def page_get(client, url: str, sql_times: list[float] | None = None) -> Callable[[], object]:
    """A callable that GETs `url` with the test `client`, asserts a 200 and returns the
    response; with `sql_times`, it appends the seconds the page spent in SQL to it."""
    from django.db import connection

    def run():
        spent = [0.0]

        def wrapper(execute, sql, params, many, context):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                spent[0] += time.perf_counter() - start

        with connection.execute_wrapper(wrapper):
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if sql_times is not None:
            sql_times.append(spent[0])
        return response

    return run


@contextmanager
def celery_broker(mode: str) -> Iterator[Callable[[], int]]:
    """Run Celery tasks as production does (`mode="memory"`: `.delay()` publishes to kombu's
    in-memory transport and nothing runs; the callable yielded purges the queue and returns
    the number of messages published) or in-process (`mode="eager"`: `.delay()` runs the
    task at once, as `task_always_eager` does when no broker is configured)."""
    from couponplatform.celery import app

    old = (app.conf.task_always_eager, app.conf.broker_url)
    if mode == "memory":
        app.conf.task_always_eager = False
        app.conf.broker_url = "memory://localhost/"
    else:
        app.conf.task_always_eager = True

    def purge() -> int:
        if mode != "memory":
            return 0
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_purge(app.conf.task_default_queue) or 0

    try:
        yield purge
    finally:
        purge()
        app.conf.task_always_eager, app.conf.broker_url = old

