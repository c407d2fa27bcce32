"""Releasing one approved issuance request for 10,000 accounts through the real service,
against a psycopg COPY of the same coupon rows in the same run (the "release" bar), and
the scaling of the release from 1,000 to 10,000 accounts."""
from __future__ import annotations

import datetime as dt
import gc
import statistics
import time
from decimal import Decimal
from unittest import mock

from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from approvals import release, services
from approvals.release import COUPON_FIELDS, issuance_request_release, new_coupon_code
from approvals.services import approval_approve
from bench import data, write_cost, write_path
from bench.harness import (
    Check,
    Report,
    celery_broker,
    hotspots,
    log,
    md_table,
    mib,
    ms,
    peak_memory,
    profile,
    timed_instrumented,
)
from billing import posting
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import coupon_template_create, issuance_request_submit

NAME = "release"
TITLE = "Release one approved request for 10,000 accounts"
SIZE = 10_000
SMALL = 1_000  # the 1× size of the scaling bar; SIZE is 10×
RUNS = 7
WARMUP = 1
RATIO = 3.0  # against the bare-table COPY
LIMIT_S = 1.0
SCALING = 1.3
PREFIX = "RL"
BARE = "bench_bare_coupon"
def _setup():
    partner, user = data.make_partner(
        "Bench Release Distribution", requires_bd_approval=True,
        budget=Decimal("1000000000.00"),
    )
    accounts = data.make_sub_accounts(partner, SIZE, prefix=PREFIX, seed=3)
    # Unlimited, so every round can issue to the same accounts again; partner-borne with
    # BD approval on, so each request waits for the BD as a large request would.
    template = coupon_template_create(
        partner=partner, acting_user=user, name="Bench release credit", kind="cash",
        currency="USD", face_value=Decimal("25.00"), cost_bearer="partner",
        issue_limit=CouponTemplate.IssueLimit.UNLIMITED, validity_type="relative",
        valid_days=90,
    )
    data.bare_table(Coupon, BARE)
    data.analyze()
    return partner, user, template, [a for _pk, a in accounts]


def _approved_request(template, user, ids: list[str]) -> IssuanceRequest:
    """Submitted and approved by the BD through the services, not yet released (the
    release the approval schedules on commit is held back, to be timed on its own)."""
    request = issuance_request_submit(template=template, acting_user=user, account_ids=ids)
    with mock.patch.object(services, "release_schedule", lambda *, request: None):
        approval_approve(request_id=request.pk, acting_user=template.partner.bd)
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.APPROVED, request.status
    return request


def _release(request: IssuanceRequest):
    def run():
        released = issuance_request_release(request_id=request.pk)
        assert released.status == IssuanceRequest.Status.ISSUED, (released.status,
                                                                  released.reason)
        return released

    return run


def _coupon_rows(request: IssuanceRequest) -> list[tuple]:
    """The coupon rows the release writes for `request` (same columns and values, codes
    drawn beforehand)."""
    template = request.template
    recipients = list(IssuanceRecipient.objects.filter(request=request)
                      .order_by("pk").values_list("pk", "sub_account_id"))
    now, today = timezone.now(), timezone.localdate()
    valid_until = today + dt.timedelta(days=template.valid_days - 1)
    amount = template.unit_value
    return [
        (new_coupon_code(), template.pk, request.pk, recipient_id, request.partner_id,
         sub_account_id, template.kind, template.cost_bearer, template.currency, amount,
         amount, Decimal("0"), None, None, None, None, True, "[]", today, valid_until,
         Coupon.Status.AVAILABLE, now, "")
        for recipient_id, sub_account_id in recipients
    ]


def _copy_baseline(request: IssuanceRequest):
    """What the release must at least do in its own table: the same coupon rows written by
    COPY into `coupons_coupon` in one transaction, commit included (its indexes,
    constraints, deferred foreign keys and statistics trigger all run)."""
    rows = _coupon_rows(request)

    def run():
        with transaction.atomic():
            data.copy_rows(Coupon, COUPON_FIELDS, rows)

    return run


def _bare_baseline(request: IssuanceRequest):
    """The physical limit: the same rows written by COPY, in one transaction, into a bare
    table of the same columns (no index, constraint, foreign key or trigger)."""
    rows = _coupon_rows(request)

    def run():
        with transaction.atomic():
            data.copy_rows(Coupon, COUPON_FIELDS, rows, table=BARE)

    return run


SQL_KINDS = [
    (r'"coupons_issuancerequest"', "request lock and update"),
    (r'"coupons_coupontemplate"', "template lock and counters"),
    (r'"coupons_issuancerecipient"', "recipients read"),
    (r'"audit_auditlog"', "audit insert"),
    (r'"accounts_platformbudget"', "budget"),
    (r"SAVEPOINT|DECLARE|CLOSE|FETCH", "cursor and savepoint"),
]

BODY = "service body: locks, release checks, reading recipients, counters (their SQL)"
ROWS = f"building {SIZE:,} coupon rows (codes, validity, values)"


def _breakdown(template, user, ids) -> list[list[str]]:
    # One release with the calls the service makes wrapped with timers (its code unchanged).
    from coupons.services import coupons_released

    total, phases, sql = timed_instrumented(
        _release(_approved_request(template, user, ids)), body=BODY, sql_kinds=SQL_KINDS,
        patches=[
            (release, "new_coupon_code", ROWS + " — of which codes"),
            (release, "bulk_insert", "COPY of the coupon rows"),
            (release, "issuance_request_move", "status move and audit row"),
            (connection, "_commit", "commit (incl. deferred constraint checks)"),
            (coupons_released, "send", f"after commit: signal → "
             f"{SIZE // posting.POST_BATCH} posting tasks published"),
            (release.notifications, "notify_partner", "after commit: mail to the partner"),
        ],
    )
    codes = phases.pop(ROWS + " — of which codes", 0.0)
    # The loop that builds the rows is the service body's; it is what is left once the
    # wrapped steps are taken out, less the SQL the body runs itself.
    body_sql = sum(t for (phase, _k), t in sql.items() if phase == BODY)
    rest = total - sum(phases.values()) - codes
    phases = {BODY: body_sql, ROWS: rest - body_sql + codes, **phases}
    rows = []
    for label, seconds in phases.items():
        rows.append([label, ms(seconds), f"{seconds / total:.0%}"])
        if label == ROWS:
            rows.append([f"· of which {SIZE:,} codes (`new_coupon_code`)", ms(codes),
                         f"{codes / total:.0%}"])
        for (phase, kind), t in sql.items():
            if phase == label and label != BODY:
                rows.append([f"· SQL: {kind}", ms(t), f"{t / total:.0%}"])
            elif phase == label == BODY:
                rows.append([f"· SQL: {kind}", ms(t), f"{t / total:.0%}"])
    rows.append(["whole release", ms(total), "100%"])
    return rows


def _timed_to_commit(fn) -> tuple[float, float]:
    """Seconds of the whole call, and up to the end of its (last) commit: what follows is
    the work the service does after the commit, in the same call."""
    ends: list[float] = []
    commit = connection._commit

    def wrapper(*args, **kwargs):
        try:
            return commit(*args, **kwargs)
        finally:
            ends.append(time.perf_counter())

    gc.collect()
    with mock.patch.object(connection, "_commit", wrapper):
        start = time.perf_counter()
        fn()
        end = time.perf_counter()
    return end - start, (ends[-1] if ends else end) - start


def _write_costs(template, user, ids) -> dict[str, write_cost.WriteCost]:
    """What one release of SIZE coupons writes, and each baseline (rows, index entries, WAL;
    bench/write_cost.py), measured on one more run of each outside the timed rounds."""
    costs = {}
    for kind, make in (("release", _release), ("own-table COPY", _copy_baseline),
                       ("bare COPY", _bare_baseline)):
        fn = make(_approved_request(template, user, ids))
        _result, costs[kind] = write_cost.measure_writes(fn)
    return costs


def run() -> Report:
    log(f"{NAME}: building {SIZE:,} sub-accounts")
    partner, user, template, ids = _setup()
    mail.outbox = []

    report = Report(
        name=NAME, title=TITLE,
        target=f"median time of `issuance_request_release` for {SIZE:,} accounts ≤ "
               f"{RATIO:.0f}× the median of a psycopg COPY of the same coupon rows into a bare "
               f"table (no index, constraint or trigger: the physical limit), and under "
               f"{LIMIT_S:.0f} s; the per-coupon times at {SMALL:,} and {SIZE:,} accounts "
               f"within {SCALING}× of each other (time linear in the size). Beside it, not a "
               "target: the same COPY into `coupons_coupon` itself.",
        headers=["accounts", "runs", "release p50", "release min", "release max",
                 "to commit p50", "bare COPY p50", "bare COPY min", "own-table COPY p50",
                 "release / bare COPY (p50)", "release / own-table COPY (p50)",
                 "own-table / bare COPY (p50)", "per coupon p50", "peak Python memory", ""],
    )
    kinds = ("release", "copy", "bare", "small", "small_copy", "small_bare")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    posted = []
    with celery_broker("memory") as purge:
        for i in range(WARMUP + RUNS):
            log(f"{NAME}: round {i + 1} of {WARMUP + RUNS}")
            steps = [
                ("copy", _copy_baseline(_approved_request(template, user, ids))),
                ("bare", _bare_baseline(_approved_request(template, user, ids))),
                ("release", _release(_approved_request(template, user, ids))),
                ("small_copy", _copy_baseline(_approved_request(template, user, ids[:SMALL]))),
                ("small_bare", _bare_baseline(_approved_request(template, user, ids[:SMALL]))),
                ("small", _release(_approved_request(template, user, ids[:SMALL]))),
            ]
            purge()
            # Each round in another order (rotated, and every other round reversed), so a
            # change of load on the shared machine falls on every kind alike.
            steps = steps[i % len(steps):] + steps[:i % len(steps)]
            for kind, fn in steps if i % 2 else steps[::-1]:
                seconds, to_commit = _timed_to_commit(fn)
                if i >= WARMUP:
                    samples[kind].append(seconds)
                    samples.setdefault(kind + "_commit", []).append(to_commit)
                if kind in ("release", "small"):
                    posted.append(purge())
            mail.outbox = []
        memory = peak_memory(_release(_approved_request(template, user, ids)))
        purge()
        log(f"{NAME}: write cost (rows, index entries, WAL) of one more of each")
        costs = _write_costs(template, user, ids)
        purge()
        log(f"{NAME}: what each part of the table costs a COPY")
        parts = write_path.components(
            COUPON_FIELDS, _coupon_rows(_approved_request(template, user, ids)))
        log(f"{NAME}: breakdown and profile")
        breakdown = _breakdown(template, user, ids)
        purge()
        stats = profile(_release(_approved_request(template, user, ids)))
        purge()

    def median(kind):
        return statistics.median(samples[kind])

    def line(label, size, rel, copy, bare):
        r = samples[rel]
        return [label, str(len(r)), ms(median(rel)), ms(min(r)), ms(max(r)),
                ms(statistics.median(samples[rel + "_commit"])), ms(median(bare)),
                ms(min(samples[bare])), ms(median(copy)),
                f"{median(rel) / median(bare):.2f}×", f"{median(rel) / median(copy):.2f}×",
                f"{median(copy) / median(bare):.2f}×", f"{median(rel) / size * 1e6:.0f} µs"]

    big = line(f"{SIZE:,}", SIZE, "release", "copy", "bare")
    small = line(f"{SMALL:,}", SMALL, "small", "small_copy", "small_bare")
    per_big = median("release") / SIZE
    per_small = median("small") / SMALL
    checks = [
        Check(f"{SIZE:,} accounts: release / bare-table COPY (p50)",
              median("release") / median("bare"), RATIO, "×"),
        Check(f"{SIZE:,} accounts: release p50", median("release"), LIMIT_S, "s"),
        Check(f"scaling: per-coupon time, larger / smaller of {SMALL:,} and {SIZE:,} (p50)",
              max(per_small, per_big) / min(per_small, per_big), SCALING, "×"),
    ]
    report.checks += checks
    report.rows.append(big + [mib(memory), "PASS" if all(c.passed for c in checks[:2])
                              else "MISS"])
    report.rows.append(small + ["", "PASS" if checks[2].passed else "MISS"])
    report.notes.append(
        "Ratios of the same run: release / bare-table COPY "
        f"{median('release') / median('bare'):.2f}× "
        f"and release / own-table COPY {median('release') / median('copy'):.2f}× at {SIZE:,}; "
        f"{median('small') / median('small_bare'):.2f}× and "
        f"{median('small') / median('small_copy'):.2f}× at {SMALL:,}. Run ranges "
        f"(min–max, ms): release {ms(min(samples['release']))}–{ms(max(samples['release']))}, "
        f"own-table COPY {ms(min(samples['copy']))}–{ms(max(samples['copy']))}, bare COPY "
        f"{ms(min(samples['bare']))}–{ms(max(samples['bare']))}."
    )
    report.notes.append(_write_cost_note(costs))
    report.notes.append(
        f"What each part of `coupons_coupon` costs the COPY of {SIZE:,} coupon rows: the same "
        "rows copied into the table with its parts taken away one after the other, each "
        "variant in a transaction rolled back afterwards (the foreign keys checked at once "
        "instead of at the commit it never reaches; bench/write_path.py), median of 3 "
        "rounds in turns:\n\n"
        + md_table(["table", "COPY ms", "the part costs ms", "share of the whole"], parts)
    )
    report.notes.append(
        f"Setup: one distributor (BD approval on) with {SIZE:,} customer accounts loaded by "
        "COPY and an unlimited partner-borne cash template (25.00 USD, valid 90 days from "
        "release). Each round submits six requests through `issuance_request_submit` and has "
        "the BD approve them through `approval_approve` (untimed; the release the approval "
        "schedules on commit is held back), then times, in an order rotating from round to "
        "round:\n"
        f"  - **release**: `approvals.release.issuance_request_release(request_id=…)` for "
        f"{SIZE:,} and for {SMALL:,} accounts — request and template locks, the release "
        "re-checks, the coupon rows (codes, validity), COPY, template counters, status move "
        "and audit row, commit, and what runs after the commit in the same call: the "
        "`coupons_released` signal, whose billing receiver publishes one posting task per "
        f"{posting.POST_BATCH} accounts, and the mail to the partner. Celery "
        "publishes to kombu's in-memory transport (nothing runs the tasks), so a publish "
        "costs what it costs without the network round trip of a real broker;\n"
        "  - **bare COPY**: the same coupon rows (same columns and values, codes drawn "
        f"beforehand) written with psycopg `COPY` in one transaction, commit included, into "
        f"`{BARE}`, a table of the coupon's columns and defaults only (`CREATE TABLE … (LIKE "
        "coupons_coupon INCLUDING DEFAULTS INCLUDING IDENTITY)`: no index, primary key, CHECK, "
        "foreign key or "
        "trigger), which grows by the same rows as the real table: the physical limit;\n"
        "  - **own-table COPY**: the same rows by the same COPY into `coupons_coupon`, for "
        "another approved request of the same size: what the table itself costs (its "
        "indexes, CHECKs, deferred foreign keys and the statistics trigger).\n"
        "*To commit* is the release's time up to the end of its commit; the rest of the call "
        "is the work after the commit (signal, publishing, mail).\n"
        f"All include the commit, where PostgreSQL runs the deferred foreign-key checks of "
        f"the rows (the bare table has none). {WARMUP} warm-up round, then {RUNS} timed "
        "rounds; peak memory is "
        f"tracemalloc's peak over one more release. Each release published "
        f"{max(posted):,} posting messages."
    )
    report.notes.append(
        f"Where one release of {SIZE:,} accounts spends its time (one instrumented run: the "
        "calls the service makes wrapped with timers, each SQL statement timed and listed "
        "under the step that ran it):\n\n" + md_table(["phase", "ms", "share"], breakdown)
    )
    report.notes.append(
        "Python hot spots of one release (cProfile, by own time; the profiler inflates "
        "Python, so read the shares):\n\n"
        + md_table(["function", "calls", "own ms", "cumulative ms", "share"], hotspots(stats))
    )
    return report


def _write_cost_note(costs: dict[str, write_cost.WriteCost]) -> str:
    """The write amplification of one release and of its baselines, per coupon."""
    lines = [
        f"**Write amplification** (one more run of each, {SIZE:,} coupons; rows from "
        "`pg_stat_user_tables`, index entries and WAL from the WAL records of this database "
        "between `pg_current_wal_lsn()` before and after, read with pg_walinspect; "
        "bench/write_cost.py):",
        "",
    ]
    summary_rows = []
    for kind, cost in costs.items():
        summary_rows.append([
            kind, str(len(cost.indexes_touched())), f"{cost.index_entries() / SIZE:.1f}",
            *write_cost.wal_cells(cost, SIZE),
        ])
    lines.append(md_table(["per coupon", "indexes written", "index entries",
                           "WAL without full-page images", "WAL with them",
                           "raw LSN distance (every database)"], summary_rows))
    headers, rows = write_cost.rows_table(costs["release"], unit="coupon", n=SIZE)
    lines += ["", "What the release writes, by table:", "", md_table(headers, rows)]
    return "\n".join(lines)
