"""The "Under load" section of docs/BENCHMARKS.md, from a load session's results."""
from __future__ import annotations

import datetime as dt
import os
import re

from bench.harness import DOC, machine, md_table
from bench.load import samples

NAME = "load"
TARGET_RATE = 150
RERUN = ("DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench "
         "CELERY_BROKER_URL=redis://127.0.0.1:6379/8 make load")
# What must come out equal with and without the kill (the Locust-driven rows differ by
# nature: users click at random).
SAME = ("requests whose coupons ≠ their recipients", "approved, not released",
        "bills not posted", "release under load: coupons", "release under load: amount",
        "billing under load: bills posted", "billing under load: deductions",
        "billing under load: deducted", "ledger discrepancies")


def _s(value) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _clean(result: dict) -> bool:
    acc = result.get("accounting", {})
    w = result.get("window")
    return (acc.get("ledger discrepancies") == 0
            and acc.get("requests whose coupons ≠ their recipients") == 0
            and not any(result.get("left_after_drain", {}).values())
            and w is not None and w.server_errors == 0 and w.failed == 0
            and "error" not in result.get("under_load", {}))


def same_result(results: dict) -> bool | None:
    if "normal" not in results or "kill" not in results:
        return None
    a, b = results["normal"]["accounting"], results["kill"]["accounting"]
    return all(a.get(k) == b.get(k) for k in SAME) and _clean(results["kill"])


def passed(results: dict) -> bool:
    normal = results.get("normal") or results.get("kill")
    rate_ok = normal["window"].rate >= TARGET_RATE and normal["window"].p95 <= samples.P95_LIMIT_MS
    return rate_ok and all(_clean(r) for r in results.values()) and same_result(results) in (
        None, True)


def _steps(result: dict) -> list[str]:
    if not result.get("steps"):
        return [f"No steps: measured at the rate given ({result['rate']}/s).", ""]
    rows = [[f"{s['rate']}", f"{s['served']:.1f}", f"{s['p95']:.0f}", f"{s['p99']:.0f}",
             f"{s['5xx']}", f"{s['failed']}", "PASS" if s["passed"] else "MISS"]
            for s in result["steps"]]
    return ["### Rate steps (pages only, no money jobs)", "",
            md_table(["asked /s", "served /s", "page p95 ms", "page p99 ms", "5xx",
                      "no response", "p95 ≤ 300 ms, served ≥ 90 %"], rows), ""]


def _jobs(results: dict) -> list[str]:
    cols = [(n, r) for n, r in results.items()]
    rows = []
    for job, key in (("release, 10,000 accounts (approve → issued)", "release_s"),
                     ("billing run, 10,000 bills (enqueued → every bill posted)", "billing_s")):
        row = [job]
        for _name, r in cols:
            row += [_s(r["alone"].get(key)), _s(r["under_load"].get(key))]
        rows.append(row)
    headers = ["job"]
    for name, _r in cols:
        label = "worker killed" if name == "kill" else "normal"
        headers += [f"alone ({label})", f"under load ({label})"]
    out = ["### The release and the billing run, alone and under load", "",
           md_table(headers, rows), ""]
    kill = results.get("kill", {}).get("under_load", {}).get("kill")
    if kill:
        out += [f"Worker killed: `load-worker-1` SIGKILLed (its whole process group) when "
                f"{kill['posted']:,} of the run's bills were posted, with "
                f"{len(kill['in_flight'])} task(s) in flight "
                f"({', '.join(t.split('[')[0] for t in kill['in_flight']) or 'none'}); "
                f"{kill['redelivered']['succeeded_after']} of them ran to success after the "
                "visibility timeout on a surviving or restarted worker; the killed worker was "
                "restarted 5 s later, as a supervisor would."
                + (f" The kill left kombu's restore mutex held ({kill['mutex_ttl']} s to "
                   "expire): the killed worker was inside its once-a-second sweep of the "
                   "unacked messages, and no worker hands them out again until the mutex "
                   "expires." if kill.get("mutex_ttl", -2) > 0 else
                   " kombu's restore mutex was free after the kill."), ""]
    return out


def _accounting(results: dict) -> list[str]:
    names = list(results)
    keys = [k for k in results[names[0]]["accounting"] if not k.startswith("_")]
    rows = [[k, *[str(results[n]["accounting"].get(k)) for n in names]] for k in keys]
    rows.append(["5xx responses", *[str(results[n]["window"].server_errors) for n in names]])
    same = same_result(results)
    out = ["### After each run: the ledger and every coupon and deduction accounted for", "",
           md_table(["check", *[("worker killed" if n == "kill" else n) for n in names]], rows),
           ""]
    for n in names:
        broker = results[n].get("broker_after_drain", {})
        if broker.get("unacked"):
            out.append(f"After the drain ({n}): {broker['unacked']} message(s) still unacked "
                       f"in Redis, kombu's restore mutex {broker['mutex_ttl']} s from expiring.")
    secs = ", ".join(f"{results[n]['accounting']['_ledger_seconds']} s" for n in names)
    out.append(f"`check_ledger` (billing/ledger.py, over the whole database) took {secs}.")
    if same is not None:
        out.append(f"Same result with the worker killed: **{'yes' if same else 'NO'}** "
                   f"(compared: {', '.join(SAME)}).")
    return [*out, ""]


def _pages(result: dict) -> list[str]:
    pages = result.get("pages")
    if not pages:
        return []
    rows = [[r["page"], str(r["queries"]), f"{r['page_p50']:.1f}", f"{r['page_p95']:.1f}",
             f"{r['sql_p95']:.1f}", f"{r['bare_p95']:.1f}", f"{r['budget']:.1f}",
             f"{r['bar']:.0f}", "PASS" if r["passed"] else "MISS"] for r in pages["rows"]]
    return ["### Page figures in production mode, against the bare page", "",
            f"Each page {pages['rounds']} times over HTTP from the same gunicorn (one request "
            "at a time, before the load), interleaved with the bare page (bench/load/bare.py: "
            "the same sign-in, middleware and base template, no queries of its own) and with "
            "the page's own statements (those the bare page does not run) executed raw on "
            "psycopg. Bar: page p95 ≤ own-SQL p95 + 1.5 × bare-page p95, and the page's "
            "absolute p95 bar of QUALITY.md.", "",
            md_table(["page", "own queries", "page p50", "page p95", "own SQL p95",
                      "bare p95", "SQL + 1.5 × bare", "bar ms", ""], rows), ""]


def _capacity(result: dict, manifest: dict, opts) -> list[str]:
    """Per-process capacities, for docs/SCALING.md."""
    alone = result.get("alone", {})
    s = manifest["scale"]
    parts = [f"{result['rate'] / opts.web_workers:.0f} page requests/s per gunicorn worker "
             f"({opts.web_threads} threads)"]
    if alone.get("billing_s"):
        parts.append(f"{s['billing_accounts'] / alone['billing_s'] / opts.celery_workers:.0f} "
                     "bills/s per Celery worker (the billing run alone: made and posted)")
    if alone.get("release_s"):
        parts.append(f"{s['release_accounts'] / alone['release_s']:,.0f} coupons/s for one "
                     "release (one task on one worker)")
    w = result["window"]
    web_ms = w.cpu_ms_per_request("web")
    out = [f"Capacity measured here: {'; '.join(parts)}.", ""]
    if web_ms:
        out += [f"CPU per request in the measured run (whatever the machine's load): gunicorn "
                f"{web_ms:.0f} ms (one core's worth of gunicorn serves about "
                f"{1000 / web_ms:.0f} requests/s, PostgreSQL's share not counted); Locust "
                f"{w.cpu_ms_per_request('locust'):.1f} ms; the Celery workers "
                f"{w.cpu['workers']:.0f} CPU s over the run (the release, the billing run and "
                "the console's postings).", ""]
    return out


def render(results: dict, *, manifest: dict, opts, meta: dict | None = None) -> str:
    info = machine()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    main = results.get("normal") or results.get("kill")
    w = main["window"]
    verdict = "PASS" if passed(results) else "MISS"
    meta = meta or {}
    conditions = os.environ.get("LOAD_CONDITIONS", "")
    s = manifest["scale"]
    history = s["history_big"] + s["history_mid"] * s["mid_partners"]
    lines = [
        f"<!-- bench:{NAME} -->",
        "## Under load: Locust's partners, BDs and sub-accounts on gunicorn and Celery "
        "workers, 1,000,000 coupons",
        "",
        f"**{verdict}** · run {when} · {info['nproc']} CPUs ({info['cpu']}) · PostgreSQL "
        f"{info['postgresql']} · Python {info['python']} · Django {info['django']}"
        + (f" · load average {meta['load'][0]:.1f} before, {meta['load'][1]:.1f} after"
           if meta.get("load") else "")
        + (f" · took {meta['seconds'] / 60:.0f} min" if meta.get("seconds") else "")
        + (" · **quick run** (short steps)" if opts.quick else ""),
        "",
        *([f"Conditions: {conditions}", ""] if conditions else []),
        f"Rerun: `{RERUN}` (the dataset is built once, 7–10 minutes on this machine under "
        "load, and reused; a full run then takes about 20 minutes on a quiet machine).",
        "",
        f"Setup: the load dataset (bench/load/world.py): {manifest['sub_accounts']:,} "
        f"sub-accounts ({s['big_accounts']:,} under one distributor), "
        f"{manifest['coupons']:,} coupons, {history:,} accounts with {s['history_days']} "
        "days of posted bills, closed months, "
        f"{manifest['pending_at_build']:,} requests in the BDs' queues; each run on a fresh "
        f"copy. gunicorn {opts.web_workers} workers × {opts.web_threads} threads with DEBUG "
        f"off; {opts.celery_workers} Celery workers (prefork, concurrency "
        f"{opts.celery_concurrency}, acks_late, visibility timeout "
        f"{opts.visibility_timeout} s) on Redis; Locust (FastHttpUser) on the same machine: "
        "45 % partner admins and operators, 10 % BDs, 45 % sub-account users, each user one "
        "task a second (bench/load/locustfile.py). Exports are downloads, listed but not "
        "counted as pages.",
        "",
        *_steps(main),
        (f"Highest rate with page p95 ≤ 300 ms: **{main['rate']} page requests/s** asked, "
         f"{w.rate:.1f}/s served in the measured run (target ≥ {TARGET_RATE}/s)."
         if main.get("rate_found", True) else
         f"**No step kept page p95 ≤ 300 ms**; the measured runs use the lowest step, "
         f"{main['rate']}/s (target ≥ {TARGET_RATE}/s)."),
        "",
        *_capacity(main, manifest, opts),
        f"### Pages at {main['rate']}/s for {opts.run_seconds} s, while the release and the "
        "billing run go through the workers", "",
        md_table(samples.PAGE_HEADERS, samples.page_rows(w)), "",
        *_jobs(results),
        *_accounting(results),
        *_pages(main),
        f"<!-- /bench:{NAME} -->",
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(rf"<!-- bench:{NAME} -->.*?<!-- /bench:{NAME} -->", re.S)
    doc = pattern.sub(lambda _m: text, doc) if pattern.search(doc) else (
        doc.rstrip() + "\n\n" + text + "\n")
    DOC.write_text(doc)
