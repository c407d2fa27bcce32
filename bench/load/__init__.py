"""The load test: a dataset of a million coupons, Locust's users of every role against the
production processes (gunicorn, Celery workers on Redis), and the runner that steps the
rate and checks the ledger after (docs/BENCHMARKS.md, "Under load")."""
