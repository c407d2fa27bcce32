"""Helpers for the tests of the production shape: start-up in a fresh process with a given
environment, as gunicorn, a worker or manage.py would start."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The real-process fixtures of the worker tests: PostgreSQL with committed transactions, a
# redis-server of the test's own.
from tests.integration.conftest import private_redis, worker_ready_db  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SECRET = "k3Y-" + "x9Zq" * 14  # 60 characters, more than 5 distinct: not weak
# A production environment that starts (nothing here is connected to by `check`).
PRODUCTION = {
    "DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "coupons.example.com",
    "DATABASE_URL": "postgres://app@db.internal:5432/coupons",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
}
# Variables of the developer's or CI's shell that would leak into the child's settings.
OURS = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL",
        "CACHE_URL", "CSRF_TRUSTED_ORIGINS", "TLS_PROXY", "DJANGO_SETTINGS_MODULE")


def child_env(**overrides) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(PRODUCTION)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=child_env(**overrides), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def manage(*args: str, **overrides) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], **overrides)


@pytest.fixture(autouse=True)
def _health_cache_forgotten():
    from couponplatform import health

    health.reset()
    yield
    health.reset()
