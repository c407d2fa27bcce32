"""Run the benchmarks: `python -m bench.run [name ...]` (all when none is named).

Needs DATABASE_URL pointing at PostgreSQL; works in a database of its own, named after
DATABASE_URL's with "_bench" and a suffix of the run (BENCH_DB_SUFFIX), which it creates,
migrates and drops (--keep keeps it, --reuse NAME runs on a kept one), and writes each
benchmark's section of docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time

# name -> module with NAME, TITLE and run() -> harness.Report; the order of the document.
BENCHMARKS = {
    "issue_search": "bench.issue_search",
    "submit": "bench.submit",
    "release": "bench.release",
    "billing_run": "bench.billing_run",
    "usage_pages": "bench.usage_pages",
    # After usage_pages: at full size it lists that benchmark's 1,000,000 coupons.
    "api": "bench.api",
    "indexes": "bench.indexes",
    "worker": "bench.worker",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-doc", action="store_true",
                        help="print the figures without writing docs/BENCHMARKS.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--notes", action="store_true",
                        help="print each report's notes (setup, breakdowns) too")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's database after the run (to --reuse it)")
    parser.add_argument("--reuse", metavar="NAME",
                        help="run on a database an earlier run kept (its data stays; "
                             "benchmarks that find their data there skip building it)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)

    from bench import harness

    # A run stopped by SIGTERM still drops the database it made (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))

    harness.setup_django()
    reports = []
    with harness.run_database(reuse=args.reuse, keep=args.keep) as db_name:
        info = harness.machine()
        print(f"Benchmarks on database {db_name}: PostgreSQL {info['postgresql']}, "
              f"{info['nproc']} CPUs ({info['cpu']})")
        for name in names:
            module = importlib.import_module(BENCHMARKS[name])
            start, load = time.perf_counter(), harness.loadavg()
            report = module.run()
            report.seconds = time.perf_counter() - start
            report.load = (load, harness.loadavg())
            harness.print_report(report)
            if args.notes:
                print("\n\n".join(report.notes))
            if not args.no_doc:
                harness.write_section(report, info, list(BENCHMARKS))
            reports.append(report)
    print("\n" + "  ".join(f"{r.name}: {r.verdict}" for r in reports))
    if not args.no_doc:
        print(f"Figures written to {harness.DOC.relative_to(harness.ROOT)}")
    return 1 if args.strict and not all(r.passed for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
