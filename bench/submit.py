"""Submitting one issuance request for 10,000 accounts, against a psycopg COPY of the same
recipient rows in the same run (the "submit" bar)."""
from __future__ import annotations

import random
import statistics
from decimal import Decimal

from django.db import connection, transaction

from bench import data, write_cost
from bench.harness import (
    Check,
    Report,
    hotspots,
    log,
    md_table,
    mib,
    ms,
    peak_memory,
    profile,
    timed,
    timed_instrumented,
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
RATIO = 3.0  # against the bare-table COPY
PREFIX = "SU"
BARE = "bench_bare_recipient"
RECIPIENT_FIELDS = ("request", "template", "sub_account", "limited", "holds")
BEARERS = ("partner", "platform")

_names = iter(range(1, 1_000_000))


def _template(partner, user, bearer: str):
    return coupon_template_create(
        partner=partner, acting_user=user, name=f"Bench {bearer}-borne {next(_names)}",
        kind="cash", currency="USD", face_value=Decimal("10.00"), cost_bearer=bearer,
        issue_limit="one", validity_type="relative", valid_days=30,
    )


def _copy_baseline(partner, user, bearer: str, pks: list[int], *, table: str | None = None):
    """What the service must at least do: write the recipient rows, by COPY, in a
    transaction, into `coupons_issuancerecipient` (or `table`: the bare table of its
    columns). The template and the request row are made beforehand, untimed."""
    template = _template(partner, user, bearer)
    request = IssuanceRequest.objects.create(
        partner=partner, template=template, route=IssuanceRequest.Route.BD, cost_bearer=bearer,
        currency="USD", unit_value=template.unit_value, recipient_count=len(pks),
        total_amount=template.unit_value * len(pks), submitted_by=user,
    )
    meta = IssuanceRecipient._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(f).column) for f in RECIPIENT_FIELDS
    )
    sql = (f"COPY {connection.ops.quote_name(table or meta.db_table)} ({columns}) "
           "FROM STDIN")

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


def _breakdown(partner, user, bearer: str, ids: list[str]) -> list[list[str]]:
    # One submit with the calls the service makes wrapped with timers (its code unchanged).
    signal = services.issuance_request_submitted
    total, phases, sql = timed_instrumented(
        _submit(partner, user, bearer, ids), body=BODY, sql_kinds=SQL_KINDS, patches=[
            (services, "_require_writer", "permission check"),
            (services, "issuance_selection_check", "selection check"),
            (services, "bulk_insert", "recipients: COPY of the rows"),
            (services, "audit_record", "audit row"),
            (signal, "send", "approval routing (submit signal)"),
            (connection, "_commit", "commit (incl. constraint checks)"),
        ],
    )
    phases[BODY] = total - sum(phases.values())
    rows = []
    for label, seconds in phases.items():
        rows.append([label, ms(seconds), f"{seconds / total:.0%}"])
        for (phase, kind), t in sql.items():
            if phase == label:
                rows.append([f"· SQL: {kind}", ms(t), f"{t / total:.0%}"])
    rows.append(["whole submit", ms(total), "100%"])
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
    data.bare_table(IssuanceRecipient, BARE)
    data.analyze()

    report = Report(
        name=NAME, title=TITLE,
        target=f"median time of `issuance_request_submit` ≤ {RATIO:.0f}× the median of a "
               "psycopg COPY of the same recipient rows into a bare table (no index, "
               "constraint or trigger: the physical limit), for partner- and platform-borne "
               "templates. Beside it, not a target: the same COPY into "
               "`coupons_issuancerecipient` itself.",
        headers=["cost bearer", "runs", "submit p50", "submit min", "submit max",
                 "bare COPY p50", "bare COPY min", "own-table COPY p50",
                 "submit / bare COPY (p50)", "submit / own-table COPY (p50)",
                 "own-table / bare COPY (p50)", "peak Python memory", ""],
    )
    samples = {b: {"submit": [], "copy": [], "bare": []} for b in BEARERS}
    for i in range(WARMUP + RUNS):
        log(f"{NAME}: round {i + 1} of {WARMUP + RUNS}")
        for bearer in BEARERS:
            # Fresh templates each round, so "Limited to 1" never meets an earlier request.
            steps = [("copy", _copy_baseline(partner, user, bearer, pks)),
                     ("bare", _copy_baseline(partner, user, bearer, pks, table=BARE)),
                     ("submit", _submit(partner, user, bearer, ids))]
            steps = steps[i % len(steps):] + steps[:i % len(steps)]
            for kind, fn in steps if i % 2 else steps[::-1]:
                seconds, _ = timed(fn)
                if i >= WARMUP:
                    samples[bearer][kind].append(seconds)

    breakdowns = {}
    ranges = []
    for bearer in BEARERS:
        s, c, b = (samples[bearer][k] for k in ("submit", "copy", "bare"))
        med = {k: statistics.median(v) for k, v in samples[bearer].items()}
        ratio = med["submit"] / med["bare"]
        memory = peak_memory(_submit(partner, user, bearer, ids))
        check = Check(f"{bearer}-borne: submit / bare-table COPY (p50)", ratio, RATIO, "×")
        report.checks.append(check)
        report.rows.append([
            f"{bearer}-borne", str(len(s)), ms(med["submit"]), ms(min(s)), ms(max(s)),
            ms(med["bare"]), ms(min(b)), ms(med["copy"]), f"{ratio:.2f}×",
            f"{med['submit'] / med['copy']:.2f}×", f"{med['copy'] / med['bare']:.2f}×",
            mib(memory), "PASS" if check.passed else "MISS",
        ])
        ranges.append(f"{bearer}-borne: submit {ms(min(s))}–{ms(max(s))}, own-table COPY "
                      f"{ms(min(c))}–{ms(max(c))}, bare COPY {ms(min(b))}–{ms(max(b))}")
        log(f"{NAME}: breakdown and profile, {bearer}-borne")
        breakdowns[bearer] = _breakdown(partner, user, bearer, ids)
    platform_hotspots = hotspots(profile(_submit(partner, user, "platform", ids)))
    log(f"{NAME}: write cost (rows, index entries, WAL) of one more of each")
    costs = {
        "submit": write_cost.measure_writes(_submit(partner, user, "partner", ids))[1],
        "own-table COPY": write_cost.measure_writes(
            _copy_baseline(partner, user, "partner", pks))[1],
        "bare COPY": write_cost.measure_writes(
            _copy_baseline(partner, user, "partner", pks, table=BARE))[1],
    }
    report.notes.append("Run ranges (min–max, ms): " + "; ".join(ranges) + ".")
    report.notes.append(_write_cost_note(costs))
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
        f"  - **bare COPY**: the same {SELECTED:,} recipient rows written with psycopg `COPY` "
        f"in one transaction into `{BARE}`, a table of the recipient's columns and defaults "
        "only (`CREATE TABLE … (LIKE coupons_issuancerecipient INCLUDING DEFAULTS INCLUDING "
        "IDENTITY)`: no index, constraint, foreign key or trigger): the physical limit;\n"
        f"  - **own-table COPY**: the same rows by the same COPY into "
        "`coupons_issuancerecipient` (request row made beforehand, untimed): what the table "
        "itself costs.\n"
        "Each round's order rotates. All include the commit, where PostgreSQL runs the "
        "deferred foreign-key checks of the rows (Django creates foreign keys `DEFERRABLE "
        "INITIALLY DEFERRED`; the bare table has none).\n"
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
        + md_table(["function", "calls", "own ms", "cumulative ms", "share"], platform_hotspots)
    )
    return report


def _write_cost_note(costs: dict[str, write_cost.WriteCost]) -> str:
    """The write amplification of one partner-borne submit and of its baselines."""
    rows = []
    for kind, cost in costs.items():
        rows.append([
            kind, str(len(cost.indexes_touched())), f"{cost.index_entries() / SELECTED:.1f}",
            *write_cost.wal_cells(cost, SELECTED),
        ])
    headers, by_table = write_cost.rows_table(costs["submit"], unit="recipient", n=SELECTED)
    return "\n".join([
        f"**Write amplification** (one more partner-borne run of each, {SELECTED:,} "
        "recipients; rows from `pg_stat_user_tables`, index entries and WAL from this "
        "database's WAL records between `pg_current_wal_lsn()` before and after, read with "
        "pg_walinspect; bench/write_cost.py):", "",
        md_table(["per recipient", "indexes written", "index entries",
                  "WAL without full-page images", "WAL with them",
                  "raw LSN distance (every database)"], rows),
        "", "What the submit writes, by table:", "", md_table(headers, by_table),
    ])
