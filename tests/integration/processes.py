"""The processes of the worker tests and the worker benchmark: a `celery worker` on Redis
against a given database, a Redis server to stop and start, the test process as a producer,
and polling. No pytest here, so bench/ can use it too."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from couponplatform.celery import app as celery_app
from tests import clock

ROOT = Path(__file__).resolve().parents[2]
# The workers' visibility timeout: an unacked task of a killed worker is handed out again
# this many seconds after it was delivered. Production keeps 3600 (see test_celery_config).
VISIBILITY_TIMEOUT = int(os.environ.get("INTEGRATION_VISIBILITY_TIMEOUT", "8"))
WORKER_READY_TIMEOUT = 60
# Celery reads these variables before its configuration (`app.conf.broker_url` returns
# $CELERY_BROKER_URL when set, whatever conf.update() stored), and settings.py reads the
# first too. Where CI sets it, a broker_url set only in the configuration is ignored.
BROKER_ENV = ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL")


def redis_client(url: str, timeout: float = 2.0):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


# ---------------------------------------------------------------------------------------
# The worker process


def database_url(s: dict) -> str:
    """DATABASE_URL of a Django connection's settings_dict (the test database's, for the
    worker process)."""
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s["HOST"] or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{quote(s['NAME'], safe='')}"


class Worker:
    """One `celery worker` process (and its pool children), in a process group of its own so
    a SIGKILL takes the whole worker, as when a machine or container dies."""

    def __init__(self, *, name: str, broker_url: str, queue: str, database_url: str,
                 log_dir: Path, pool: str = "prefork", concurrency: int = 2,
                 visibility_timeout: int = VISIBILITY_TIMEOUT, env: dict | None = None,
                 include: tuple[str, ...] = ()):
        self.name = name
        self.broker_url = broker_url
        self.queue = queue
        self.database_url = database_url
        self.pool = pool
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.log_path = log_dir / f"{name}.log"
        self.extra_env = env or {}
        self.include = include  # more task modules for the worker to import
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return clock.subprocess_command([
            sys.executable, "-m", "celery", "-A", "couponplatform", "worker",
            "-Q", self.queue, "-n", f"{self.name}@%h", f"--pool={self.pool}",
            f"--concurrency={self.concurrency}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            *([f"--include={','.join(self.include)}"] if self.include else []),
        ])

    def environment(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in BROKER_ENV}
        env.pop("CACHE_URL", None)  # as in production: derived from the broker's URL
        env.update({
            "DJANGO_SETTINGS_MODULE": "couponplatform.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            # Every task on the run's one queue, not on production's queues by kind.
            "CELERY_ONE_QUEUE": self.queue,
            "LOG_FORMAT": "text",  # Celery's own lines: succeeded() and results() read them
            "CELERY_VISIBILITY_TIMEOUT": str(self.visibility_timeout),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(clock.subprocess_env())  # the tests' pinned clock, when they pin one
        env.update(self.extra_env)
        return env

    def start(self, *, wait: bool = True) -> Worker:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()/kill()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.environment(), stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n"
                                     + self.log_tail())
            if b" ready." in self.log_path.read_bytes():
                self.ready_seconds = time.monotonic() - self.started_at
                return
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready in {timeout:.0f}s:\n" + self.log_tail())

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def child_pids(self) -> list[int]:
        """The pool's processes (Linux /proc)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once: no shutdown, no ack, no goodbye."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM: running tasks finish), SIGKILL if it takes too long."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            try:  # pool children left behind
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self.proc.wait(30)
            self._log.close()

    def succeeded(self, task_name: str) -> int:
        """How many runs of the task (its dotted name) this worker logged as succeeded."""
        return len(self.results(task_name))

    def results(self, task_name: str) -> list[str]:
        """The return values (as logged) of the runs of the task that succeeded here:
        "Task <name>[<id>] succeeded in 0.12s: <value>"."""
        return [line.split(" succeeded in ", 1)[1].partition("s: ")[2]
                for line in self.log_path.read_text(errors="replace").splitlines()
                if f"{task_name}[" in line and " succeeded in " in line]

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str,
             workers: list[Worker] = (), interval: float = 0.2):
    """Poll until predicate() is truthy; on timeout fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n\n".join(f"--- {w.name} ---\n{w.log_tail()}" for w in workers)
            brokers = "\n".join(sorted({broker_state(w.broker_url, w.queue) for w in workers}))
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}\n{brokers}\n{logs}",
            )
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# The test process as the producer


def _reset_celery_connections() -> None:
    """Forget pooled broker connections and cached queue/route tables, so a changed
    broker_url or default queue takes effect in this process."""
    from kombu import pools

    pools.reset()  # closes the pooled connections and forgets the pools (keyed by URL)
    celery_app._pool = None
    amqp = celery_app.amqp
    amqp._producer_pool = None
    for name in ("queues", "router", "default_queue"):
        amqp.__dict__.pop(name, None)


@contextmanager
def producing_to(broker_url: str, queue: str) -> Iterator[None]:
    """`.delay()` in this process publishes to broker_url's `queue` instead of running
    eagerly (tests/conftest.py makes every other test eager); no routes, as a worker with
    CELERY_ONE_QUEUE has none."""
    conf = celery_app.conf
    keys = ("task_always_eager", "broker_url", "task_default_queue", "task_routes")
    saved = {key: conf[key] for key in keys}
    saved_env = {name: os.environ.pop(name, None) for name in BROKER_ENV}
    os.environ["CELERY_BROKER_URL"] = broker_url
    conf.update(task_always_eager=False, broker_url=broker_url, task_default_queue=queue,
                task_routes={})
    _reset_celery_connections()
    try:
        assert conf.broker_write_url == broker_url, conf.broker_write_url
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        conf.update(saved)
        _reset_celery_connections()


def broker_state(url: str, queue: str) -> str:
    """The queue's length and the unacknowledged messages, for a failure message."""
    try:
        client = redis_client(url)
        unacked = [json.loads(raw)[2] for raw in client.hvals("unacked")]
        return (f"{url} {queue}: {client.llen(queue)} waiting, "
                f"{unacked.count(queue)} unacked (of {len(unacked)}), "
                f"restore mutex ttl {client.ttl('unacked_mutex')}")
    except Exception as exc:  # noqa: BLE001
        return f"{url}: {exc!r}"


def queue_drained(url: str, queue: str) -> bool:
    """No message of the queue waiting and none unacknowledged."""
    client = redis_client(url)
    unacked = [json.loads(raw)[2] for raw in client.hvals("unacked")]
    return client.llen(queue) == 0 and queue not in unacked


def purge_queue(url: str, queue: str) -> None:
    """Delete the queue, its bindings and the unacked messages bound for it from that
    Redis."""
    try:
        client = redis_client(url)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, raw in client.hgetall("unacked").items():
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    except Exception:  # noqa: BLE001 — best effort: the server may be gone already
        pass


# ---------------------------------------------------------------------------------------
# A Redis server of one's own, to stop and start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """redis-server on a port of its own, without persistence: stopping it loses every
    message it held, as a crashed broker without persistence does."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    @classmethod
    def on_free_port(cls, attempts: int = 3) -> RedisServer:
        """Started on a free port; another one if the port was taken meanwhile."""
        for attempt in range(attempts):
            server = cls(free_port())
            try:
                server.start()
                return server
            except Exception:
                server.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with "
                                   f"{self.proc.returncode} (port taken?)")
            try:
                client = redis_client(self.url, timeout=0.5)
                if client.ping():
                    # Ours, not another run's server that had the port first.
                    pid = client.info("server")["process_id"]
                    if pid != self.proc.pid:
                        raise RuntimeError(f"port {self.port} answered by redis pid {pid}")
                    return
            except RuntimeError:
                raise
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case it was frozen
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as in a network partition."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
