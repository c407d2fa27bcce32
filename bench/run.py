"""Run the benchmarks: `python -m bench.run [name ...]` (all when none is named).

Needs DATABASE_URL pointing at PostgreSQL; works in a throwaway database `cp_bench_test`
and writes each benchmark's section of docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

# name -> module with NAME, TITLE and run() -> harness.Report; the order of the document.
BENCHMARKS = {
    "issue_search": "bench.issue_search",
    "submit": "bench.submit",
    "release": "bench.release",
    "billing_run": "bench.billing_run",
    "usage_pages": "bench.usage_pages",
    "worker": "bench.worker",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-doc", action="store_true",
                        help="print the figures without writing docs/BENCHMARKS.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
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

    harness.setup_django()
    reports = []
    with harness.throwaway_database() as db_name:
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
            if not args.no_doc:
                harness.write_section(report, info, list(BENCHMARKS))
            reports.append(report)
    print("\n" + "  ".join(f"{r.name}: {r.verdict}" for r in reports))
    if not args.no_doc:
        print(f"Figures written to {harness.DOC.relative_to(harness.ROOT)}")
    return 1 if args.strict and not all(r.passed for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
