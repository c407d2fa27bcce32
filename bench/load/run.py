"""The load test: production processes on a fresh copy of the load dataset, Locust's users
at stepped rates, the money jobs alone and under load, a worker SIGKILLed in a second run,
the ledger after each, and the figures in docs/BENCHMARKS.md ("Under load").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/8 make load          # the full measurement
    … python -m bench.load.run --quick --no-doc                    # a short check of it

Traffic goes to 127.0.0.1 only. Every phase is bounded: Locust by its run time and a
request count, the jobs and the drain by timeouts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass

# Full and quick runs: (step seconds, measured run seconds, page rounds, rates).
FULL = (45, 150, 30, [40, 70, 100, 130, 160, 190, 220, 260, 300])
QUICK = (15, 45, 8, [30, 60, 90])
MAX_RATE = 1000
MAX_USERS = 1500
# Requests a Locust task makes on average over the mix (a submission is three, a BD's
# decision two or three): users = rate / (USER_RATE × REQUESTS_PER_TASK).
USER_RATE = 1.0
REQUESTS_PER_TASK = 1.16
RAMP_SECONDS = 6


@dataclass
class Options:
    port: int
    rates: list[int]
    step_seconds: int
    run_seconds: int
    page_rounds: int
    scenarios: list[str]
    web_workers: int
    web_threads: int
    celery_workers: int
    celery_concurrency: int
    visibility_timeout: int
    database: str | None
    scale: str
    rebuild: bool
    write_doc: bool
    quick: bool
    rate: int | None  # skip the steps: measure at this rate

    def users(self, rate: float) -> int:
        return min(MAX_USERS, max(1, math.ceil(rate / (USER_RATE * REQUESTS_PER_TASK))))

    @property
    def max_requests(self) -> int:
        """Locust's count bound for one step or run: twice what the highest rate asks."""
        top = max([*self.rates, self.rate or 0])
        return int(2 * top * max(self.step_seconds, self.run_seconds)) + 1000


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.load.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="short steps and runs (about 5 minutes), to check the harness")
    parser.add_argument("--rates", help="page requests a second to step through, e.g. 50,100")
    parser.add_argument("--rate", type=int, help="no steps: the measured runs at this rate")
    parser.add_argument("--step-seconds", type=int)
    parser.add_argument("--run-seconds", type=int)
    parser.add_argument("--page-rounds", type=int, help="rounds of the page figures (0: skip)")
    parser.add_argument("--only", choices=["normal", "kill"],
                        help="one run only (default: normal, then with a worker killed)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOAD_PORT", "8107")))
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--celery-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--visibility-timeout", type=int, default=30,
                        help="seconds before a killed worker's task is handed out again")
    parser.add_argument("--database", help="the dataset's database (default: DATABASE_URL's "
                        "name with _load)")
    parser.add_argument("--scale", choices=["full", "tiny"], default="full")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the dataset first")
    parser.add_argument("--no-doc", action="store_true",
                        help="print the figures without writing docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    step, run, rounds, rates = QUICK if args.quick else FULL
    if args.rates:
        try:
            rates = sorted({int(r) for r in args.rates.split(",") if r.strip()})
        except ValueError:
            parser.error(f"--rates takes whole numbers separated by commas, not {args.rates!r}")
    opts = Options(
        port=args.port, rates=rates, step_seconds=args.step_seconds or step,
        run_seconds=args.run_seconds or run,
        page_rounds=rounds if args.page_rounds is None else args.page_rounds,
        scenarios=[args.only] if args.only else ["normal", "kill"],
        web_workers=args.web_workers, web_threads=args.web_threads,
        celery_workers=args.celery_workers, celery_concurrency=args.celery_concurrency,
        visibility_timeout=args.visibility_timeout, database=args.database, scale=args.scale,
        rebuild=args.rebuild, write_doc=not args.no_doc, quick=args.quick, rate=args.rate,
    )
    bounds = [
        (not opts.rates or not 1 <= min(opts.rates) <= max(opts.rates) <= MAX_RATE,
         f"--rates must lie in 1…{MAX_RATE}"),
        (opts.rate is not None and not 1 <= opts.rate <= MAX_RATE,
         f"--rate must lie in 1…{MAX_RATE}"),
        (not 10 <= opts.step_seconds <= 600, "--step-seconds must lie in 10…600"),
        (not 20 <= opts.run_seconds <= 900, "--run-seconds must lie in 20…900"),
        (not 0 <= opts.page_rounds <= 500, "--page-rounds must lie in 0…500"),
        (not 1024 <= opts.port <= 65535, "--port must lie in 1024…65535"),
        (not 1 <= opts.web_workers <= 16 or not 1 <= opts.web_threads <= 32,
         "--web-workers 1…16, --web-threads 1…32"),
        (not 2 <= opts.celery_workers <= 8 or not 1 <= opts.celery_concurrency <= 8,
         "--celery-workers 2…8 (one is killed in the second run), --celery-concurrency 1…8"),
        (not 5 <= opts.visibility_timeout <= 3600, "--visibility-timeout must lie in 5…3600"),
        (opts.users(max([*opts.rates, opts.rate or 0])) >= MAX_USERS,
         f"a rate that needs {MAX_USERS:,} simulated users or more"),
    ]
    for broken, message in bounds:
        if broken:
            parser.error(message)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    from bench.load.session import LoadSession

    return LoadSession(opts).run()


if __name__ == "__main__":
    sys.exit(main())
