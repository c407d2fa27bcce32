"""The load's processes: gunicorn serving the production settings, Celery workers on Redis
(tests/integration/processes.py's Worker, the production command) and Locust headless.
Each runs in a process group of its own, so stopping or killing one takes its children."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def production_env(*, database_url: str, broker_url: str, extra: dict | None = None) -> dict:
    """The environment of a production process (DEBUG off, settings from the environment),
    on the run's database and broker."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({
        "DEBUG": "0",
        "SECRET_KEY": env.get("SECRET_KEY") or "load-test-" + secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CONN_MAX_AGE": env.get("CONN_MAX_AGE", "60"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONUNBUFFERED": "1",
        "RATELIMIT_TRUSTED_PROXIES": "0",
    })
    env.update(extra or {})
    return env


@dataclass
class Process:
    """A child in its own process group, its output in a log file."""

    name: str
    command: list[str]
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group (Linux /proc),
    children's waited-for time included: what the group has cost the machine so far."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state ppid pgrp … utime(12) stime(13) cutime(14) cstime(15).
        if int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15])
    return total / _TICK


def gunicorn(*, port: int, workers: int, threads: int, env: dict, log_dir: Path) -> Process:
    """gunicorn on 127.0.0.1 only, with the load's settings (the product's plus the bare
    pages' URLs)."""
    import importlib.util

    if importlib.util.find_spec("gunicorn") is None:
        raise RuntimeError("gunicorn is not installed: pip install -r requirements.txt")
    # As the production start-up does: the pages' {% static %} needs collectstatic's
    # manifest when DEBUG is off. Into the run's own folder.
    env = {**env, "STATIC_ROOT": str(log_dir / "static")}
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bench.load.settings"}, capture_output=True,
        text=True, timeout=300)
    if collected.returncode != 0:
        raise RuntimeError(f"collectstatic failed: {collected.stderr[-2000:]}")
    command = [sys.executable, "-m", "gunicorn", "couponplatform.wsgi",
               "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
               "--timeout", "60", "--graceful-timeout", "10"]
    return Process("web", command, {**env, "DJANGO_SETTINGS_MODULE": "bench.load.settings"},
                   log_dir / "web.log")


def wait_http(url: str, *, timeout: float, process: Process | None = None) -> float:
    """Poll `url` until it answers (any status below 500); the seconds it took."""
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                if response.status < 500:
                    return time.monotonic() - start
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return time.monotonic() - start
        except OSError:
            pass
        if process is not None and not process.alive:
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{url} did not answer in {timeout:.0f} s"
                               + (f":\n{process.log_tail()}" if process else ""))
        time.sleep(0.3)


def locust(*, host: str, users: int, seconds: int, plan: Path, samples: Path, user_rate: float,
           max_requests: int, log_dir: Path, name: str) -> Process:
    from urllib.parse import urlsplit

    if urlsplit(host).hostname not in LOOPBACK:
        raise ValueError(f"The load test sends traffic to this machine only, not {host}.")
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench/load/locustfile.py"),
               "--headless", "--host", host, "-u", str(users),
               "-r", str(max(1, users // 3)), "-t", f"{seconds}s", "--stop-timeout", "5",
               "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {**os.environ, "LOAD_PLAN": str(plan), "LOAD_SAMPLES": str(samples),
           "LOAD_USER_RATE": str(user_rate), "LOAD_MAX_REQUESTS": str(max_requests),
           "PYTHONUNBUFFERED": "1"}
    return Process(name, command, env, log_dir / f"{name}.log")


def celery_workers(*, count: int, concurrency: int, env: dict, queues: list[str],
                   default_queue: str, visibility_timeout: int, log_dir: Path) -> list:
    """`count` production workers, each consuming every queue."""
    from tests.integration.processes import Worker

    extra = {k: env[k] for k in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CONN_MAX_AGE")}
    # Production's routes (couponplatform/queues.py), not the worker tests' one queue: a
    # task a worker publishes (a bill run's postings) goes to its kind's queue.
    extra["CELERY_ONE_QUEUE"] = ""
    return [Worker(name=f"load-worker-{n}", broker_url=env["CELERY_BROKER_URL"],
                   queue=",".join(queues), database_url=env["DATABASE_URL"], log_dir=log_dir,
                   concurrency=concurrency, visibility_timeout=visibility_timeout, env=extra)
            for n in range(1, count + 1)]
