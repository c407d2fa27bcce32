"""Submitting one issuance request for 10,000 accounts, against a psycopg COPY of the same
recipient rows in the same run (QUALITY.md "submit")."""
from __future__ import annotations

import random
import re
import statistics
import time
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from unittest import mock

from django.db import connection, transaction

from bench import data
from bench.harness import (
    ROOT,
    Check,
    Report,
    log,
    md_table,
    mib,
    ms,
    peak_memory,
    profile,
    timed,
)
from coupons import services
from coupons.models import IssuanceRecipient, IssuanceRequest
from coupons.services import coupon_template_create, issuance_request_submit

NAME = "submit"
TITLE = "Submit one issuance request for 10,000 accounts"
ACCOUNTS = 12_000  # the partner's accounts; 10,000 of them are selected
SELECTED = 10_000
RUNS = 7
WARMUP = 1
RATIO = 5.0
PREFIX = "SU"
BEARERS = ("partner", "platform")

_names = iter(range(1, 1_000_000))


def _template(partner, user, bearer: str):
    return coupon_template_create(
        partner=partner, acting_user=user, name=f"Bench {bearer}-borne {next(_names)}",
        kind="cash", currency="USD", face_value=Decimal("10.00"), cost_bearer=bearer,
        issue_limit="one", validity_type="relative", valid_days=30,
    )


def _copy_baseline(partner, user, bearer: str, pks: list[int]):
    """What the service must at least do: write the recipient rows, by COPY, in a
    transaction. The template and the request row are made beforehand, untimed."""
    template = _template(partner, user, bearer)
    request = IssuanceRequest.objects.create(
        partner=partner, template=template, route=IssuanceRequest.Route.BD, cost_bearer=bearer,
        currency="USD", unit_value=template.unit_value, recipient_count=len(pks),
        total_amount=template.unit_value * len(pks), submitted_by=user,
    )
    meta = IssuanceRecipient._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(f).column)
        for f in ("request", "template", "sub_account", "limited", "holds")
    )
    sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"

    def run():
        with transaction.atomic():
            with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
                for pk in pks:
                    copy.write_row((request.pk, template.pk, pk, True, True))

    return run


def _submit(partner, user, bearer: str, ids: list[str]):
    template = _template(partner, user, bearer)

    def run():
        request = issuance_request_submit(template=template, acting_user=user, account_ids=ids)
        assert request.recipient_count == len(ids)
        return request

    return run


SQL_KINDS = [
    (r'FROM "accounts_subaccount"', "sub-accounts by account ID"),
    (r'FROM "coupons_issuancerecipient"', "Limited-to-1 holders"),
    (r'"accounts_platformbudget"', "platform budget"),
    (r'"coupons_coupontemplate"', "template"),
    (r'INSERT INTO "coupons_issuancerequest"', "request insert"),
    (r'"audit_auditlog"', "audit insert"),
    (r'"approvals_', "approvals"),
    (r"SAVEPOINT", "savepoint"),
    (r'"accounts_partnermembership"|"accounts_partner"', "membership, partner"),
]


BODY = ("service body: template fetch, budget lock, request row, building rows, savepoint, "
        "on-commit hooks")


@contextmanager
def _instrumented(phases: dict[str, float], sql: dict[tuple[str, str], float]):
    """Time the service's steps by wrapping what it calls (its code is unchanged), and each
    SQL statement under the step that ran it."""
    current = [BODY]

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
            kind = next((k for pat, k in SQL_KINDS if re.search(pat, statement)), "other")
            key = (current[-1], kind)
            sql[key] = sql.get(key, 0.0) + time.perf_counter() - start

    signal = services.issuance_request_submitted
    with ExitStack() as stack:
        for attr, label in [
            ("_require_writer", "permission check"),
            ("issuance_selection_check", "selection check"),
            ("bulk_insert", "recipients: COPY of the rows"),
            ("audit_record", "audit row"),
        ]:
            stack.enter_context(
                mock.patch.object(services, attr, wrap(label, getattr(services, attr))),
            )
        stack.enter_context(mock.patch.object(
            signal, "send", wrap("approval routing (submit signal)", signal.send)))
        stack.enter_context(mock.patch.object(
            connection, "_commit", wrap("commit (incl. constraint checks)", connection._commit)))
        stack.enter_context(connection.execute_wrapper(sql_wrapper))
        yield


def _breakdown(partner, user, bearer: str, ids: list[str]) -> list[list[str]]:
    phases: dict[str, float] = {}
    sql: dict[tuple[str, str], float] = {}
    fn = _submit(partner, user, bearer, ids)
    with _instrumented(phases, sql):
        total, _ = timed(fn)
    phases[BODY] = total - sum(phases.values())
    rows = []
    for label, seconds in phases.items():
        rows.append([label, ms(seconds), f"{seconds / total:.0%}"])
        for (phase, kind), t in sql.items():
            if phase == label:
                rows.append([f"· SQL: {kind}", ms(t), f"{t / total:.0%}"])
    rows.append(["whole submit", ms(total), "100%"])
    return rows


def _short_path(filename: str) -> str:
    """A profiler's file name without the machine's directories."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    root = str(ROOT).replace("\\", "/") + "/"
    if path.startswith(root):
        return path[len(root):]
    return "/".join(path.split("/")[-2:])


def _hotspots(partner, user, bearer: str, ids: list[str], top: int = 12) -> list[list[str]]:
    stats = profile(_submit(partner, user, bearer, ids))
    total = stats.total_tt
    ranked = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in ranked:
        where = _short_path(filename)
        rows.append([f"`{func}` ({where}:{line})", f"{ncalls:,}", ms(tottime), ms(cumtime),
                     f"{tottime / total:.0%}"])
    return rows


def run() -> Report:
    log(f"{NAME}: building {ACCOUNTS:,} sub-accounts")
    partner, user = data.make_partner(
        "Bench Submit Distribution", requires_bd_approval=True, budget=Decimal("1000000000.00"),
    )
    accounts = data.make_sub_accounts(partner, ACCOUNTS, prefix=PREFIX)
    rng = random.Random(11)
    chosen = rng.sample(accounts, SELECTED)  # in the order a paste would give them
    ids = [a for _pk, a in chosen]
    pks = [pk for pk, _a in chosen]
    data.analyze()

    report = Report(
        name=NAME, title=TITLE,
        target=f"median time of `issuance_request_submit` ≤ {RATIO:.0f}× the median of a "
               "psycopg COPY of the same recipient rows, for partner- and platform-borne "
               "templates.",
        headers=["cost bearer", "runs", "submit p50", "submit min", "submit max", "COPY p50",
                 "COPY min", "submit / COPY (p50)", "peak Python memory", ""],
    )
    samples = {b: {"submit": [], "copy": []} for b in BEARERS}
    for i in range(WARMUP + RUNS):
        log(f"{NAME}: round {i + 1} of {WARMUP + RUNS}")
        for bearer in BEARERS:
            # Fresh templates each round, so "Limited to 1" never meets an earlier request.
            steps = [("copy", _copy_baseline(partner, user, bearer, pks)),
                     ("submit", _submit(partner, user, bearer, ids))]
            for kind, fn in steps if i % 2 else steps[::-1]:
                seconds, _ = timed(fn)
                if i >= WARMUP:
                    samples[bearer][kind].append(seconds)

    breakdowns, hotspots = {}, {}
    for bearer in BEARERS:
        s, c = samples[bearer]["submit"], samples[bearer]["copy"]
        ratio = statistics.median(s) / statistics.median(c)
        memory = peak_memory(_submit(partner, user, bearer, ids))
        check = Check(f"{bearer}-borne: submit / COPY (p50)", ratio, RATIO, "×")
        report.checks.append(check)
        report.rows.append([
            f"{bearer}-borne", str(len(s)), ms(statistics.median(s)), ms(min(s)), ms(max(s)),
            ms(statistics.median(c)), ms(min(c)), f"{ratio:.2f}×", mib(memory),
            "PASS" if check.passed else "MISS",
        ])
        log(f"{NAME}: breakdown and profile, {bearer}-borne")
        breakdowns[bearer] = _breakdown(partner, user, bearer, ids)
    hotspots["platform"] = _hotspots(partner, user, "platform", ids)

    report.notes.append(
        f"Setup: one distributor (BD approval on, so every request routes to the BD and "
        f"nothing is released) with {ACCOUNTS:,} customer accounts loaded by COPY and a "
        "platform-borne budget large enough for every run; "
        f"{SELECTED:,} of the account IDs, in random order as a paste gives them. Each round "
        "makes fresh \"Limited to 1\" cash templates, then times, in alternating order:\n"
        "  - **submit**: `coupons.services.issuance_request_submit(template=…, "
        f"acting_user=…, account_ids=<{SELECTED:,} IDs>)` — permission, every check of "
        "PRODUCT §4, budget lock for platform-borne, request row, recipients by COPY, audit "
        "row, approval routing and commit;\n"
        f"  - **COPY**: the same {SELECTED:,} `IssuanceRecipient` rows written with psycopg "
        "`COPY` in one transaction (request row made beforehand, untimed).\n"
        "Both include the commit, where PostgreSQL runs the deferred foreign-key checks of "
        "the rows (Django creates foreign keys `DEFERRABLE INITIALLY DEFERRED`).\n"
        f"{WARMUP} warm-up round, then {RUNS} timed rounds; peak memory is tracemalloc's "
        "peak over one more submit."
    )
    for bearer in BEARERS:
        report.notes.append(
            f"Where one {bearer}-borne submit spends its time (one instrumented run: the "
            "calls the service makes wrapped with timers, each SQL statement timed and "
            "listed under the step that ran it):\n\n"
            + md_table(["phase", "ms", "share"], breakdowns[bearer])
        )
    report.notes.append(
        "Python hot spots of one platform-borne submit (cProfile, by own time; the "
        "profiler inflates Python, so read the shares):\n\n"
        + md_table(["function", "calls", "own ms", "cumulative ms", "share"],
                   hotspots["platform"])
    )
    return report
