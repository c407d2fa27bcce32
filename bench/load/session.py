"""One load test session: for each scenario (normal, then a worker SIGKILLed), a fresh copy
of the dataset, the production processes on it, the money jobs alone, the page figures,
the rate steps, the measured run with the jobs under load, the drain and the checks."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import loadavg, log
from bench.load import dataset, processes, samples

KILL_RESTART_SECONDS = 5  # a supervisor's restart delay (systemd's RestartSec)
WEIGHTS = {"partner": 45, "bd": 10, "sub": 45}  # the locustfile's user classes


class LoadSession:
    def __init__(self, opts):
        self.opts = opts
        self.url = dataset.default_url()
        self.base = opts.database or dataset.default_name(self.url, opts.scale)
        self.run_db = f"{self.base}_run"
        self.broker = os.environ.get("CELERY_BROKER_URL", "")
        parts = urlsplit(self.broker)
        if parts.scheme != "redis" or not parts.path.strip("/").isdigit():
            raise dataset.DatasetError(
                "Set CELERY_BROKER_URL to a Redis database of the load's own, e.g. "
                "redis://127.0.0.1:6379/8 (the run empties it first).")
        self.host = f"http://127.0.0.1:{opts.port}"
        self.out = Path(tempfile.mkdtemp(prefix="cp-load-"))
        self.env = processes.production_env(
            database_url=dataset.server_url(self.url, self.run_db), broker_url=self.broker)

    # -- set-up ------------------------------------------------------------------------

    def _django(self) -> None:
        for key in ("DEBUG", "SECRET_KEY", "CONN_MAX_AGE", "EMAIL_BACKEND"):
            os.environ[key] = self.env[key]
        os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
        # The page figures render here with DEBUG off: the static files gunicorn's start
        # collects into the run's folder (processes.gunicorn).
        os.environ["STATIC_ROOT"] = str(self.out / "static")
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.load.settings"
        dataset.setup_django(self.env["DATABASE_URL"], eager=False)

    def _queues(self) -> tuple[list[str], str]:
        """Every queue the configuration routes to, and the default one."""
        from couponplatform.celery import app

        default = app.conf.task_default_queue
        queues = {default}
        for q in app.conf.task_queues or []:
            queues.add(getattr(q, "name", q))
        routes = app.conf.task_routes or {}
        for route in (routes.values() if isinstance(routes, dict) else []):
            if isinstance(route, dict) and route.get("queue"):
                queues.add(route["queue"])
        return sorted(queues), default

    def _start(self, tag: str):
        import redis

        redis.Redis.from_url(self.broker).flushdb()
        queues, default = self._queues()
        workers = processes.celery_workers(
            count=self.opts.celery_workers, concurrency=self.opts.celery_concurrency,
            env=self.env, queues=queues, default_queue=default,
            visibility_timeout=self.opts.visibility_timeout, log_dir=self.out)
        for w in workers:
            w.start(wait=False)
        web = processes.gunicorn(port=self.opts.port, workers=self.opts.web_workers,
                                 threads=self.opts.web_threads, env=self.env,
                                 log_dir=self.out).start()
        try:
            for w in workers:
                w.wait_ready(timeout=120)
            processes.wait_http(f"{self.host}/accounts/login/", timeout=60, process=web)
        except BaseException:
            # Nothing of a failed start is left running (its port, its queues).
            for p in (web, *workers):
                p.stop()
            raise
        log(f"{tag}: gunicorn ({self.opts.web_workers}×{self.opts.web_threads}) and "
            f"{len(workers)} workers on {', '.join(queues)}; logs in {self.out}")
        return web, workers

    def _plan(self, manifest: dict, tag: str) -> Path:
        from bench.load.plan import plan_make

        top = self.opts.users(max([*self.opts.rates, self.opts.rate or 0]))
        counts = {k: top * w // 100 + 5 for k, w in WEIGHTS.items()}
        path = self.out / f"plan-{tag}.json"
        path.write_text(json.dumps(plan_make(manifest, host=self.host, sessions=counts)))
        return path

    # -- Locust --------------------------------------------------------------------------

    def locust(self, plan: Path, rate: float, seconds: int, tag: str,
               during=None) -> samples.Window:
        from bench.load.run import RAMP_SECONDS, USER_RATE

        path = self.out / f"samples-{tag}.csv"
        proc = processes.locust(
            host=self.host, users=self.opts.users(rate), seconds=seconds + RAMP_SECONDS,
            plan=plan, samples=path, user_rate=USER_RATE, max_requests=self.opts.max_requests,
            log_dir=self.out, name=f"locust-{tag}").start()
        thread = None
        if during is not None:
            thread = threading.Thread(target=during, daemon=True)
            thread.start()
        groups = {"web": [self.web], "workers": self.workers}
        before = {k: sum(processes.group_cpu(p.proc.pid) for p in v) for k, v in groups.items()}
        deadline = time.monotonic() + seconds + RAMP_SECONDS + 60
        locust_cpu = 0.0
        while proc.alive and time.monotonic() < deadline:
            locust_cpu = processes.group_cpu(proc.proc.pid) or locust_cpu
            time.sleep(0.5)
        if proc.alive:
            log(f"{tag}: Locust overran its time bound; stopped")
        proc.stop()
        # The web's CPU per page request, whatever the machine's load: its capacity.
        # (A killed worker's CPU goes with it: the figure is for the normal run.)
        cpu = {k: max(0.0, sum(processes.group_cpu(p.proc.pid) for p in v) - before[k])
               for k, v in groups.items()}
        cpu["locust"] = locust_cpu
        if "Traceback" in proc.log_tail(400):
            log(f"{tag}: Locust logged an error:\n{proc.log_tail(30)}")
        if thread is not None:
            thread.join(timeout=self.opts.run_seconds * 4)
        all_samples = samples.read(path)
        w = samples.window(all_samples, skip_first=RAMP_SECONDS, skip_last=1)
        w.cpu = {k: round(v, 1) for k, v in cpu.items()}
        w.requests_all = len(all_samples)
        log(f"{tag}: asked {rate:.0f}/s, served {w.rate:.1f} pages/s, p95 {w.p95:.0f} ms, "
            f"5xx {w.server_errors}, failed {w.failed}")
        return w

    def steps(self, plan: Path) -> tuple[int, list[dict]]:
        """Step the rate up until page p95 passes 300 ms (or a 5xx, or the rate asked is
        not served); one more step halfway into the last gap. The highest passing rate."""
        tried: list[dict] = []

        def step(rate: int) -> bool:
            w = self.locust(plan, rate, self.opts.step_seconds, f"step-{rate}")
            tried.append({"rate": rate, "served": round(w.rate, 1), "p95": round(w.p95, 1),
                          "p99": round(w.total().q(99), 1), "5xx": w.server_errors,
                          "failed": w.failed, "passed": w.passed(rate)})
            return tried[-1]["passed"]

        best = 0
        self.found = False
        for rate in self.opts.rates:
            if not step(rate):
                if best and rate - best > 10:
                    middle = (best + rate) // 2
                    if step(middle):
                        best = middle
                break
            best = rate
        self.found = best > 0
        return best or self.opts.rates[0], tried

    # -- the money jobs ----------------------------------------------------------------

    def jobs(self, manifest: dict, which: int, *, together: bool, workers=None, kill=False,
             timeout: float = 600) -> dict:
        """Release `which` (0 alone, 1 under load) and bill its day; with `together`, both at
        once; with `kill`, SIGKILL the first worker while the bills post."""
        from django.db import connection

        from bench.load import jobs

        request_id = manifest["release_requests"][which]
        day = manifest["billing_days"][which]
        expected = manifest["scale"]["billing_accounts"]
        out: dict = {}
        kill_state = {"done": False}

        def on_poll():
            if not kill or kill_state["done"]:
                return
            made, posted = jobs.billing_progress(day, expected)
            if posted > 0 and posted < expected:
                victim = workers[0]
                in_flight = _in_flight(victim.log_path.read_text(errors="replace"))
                victim.kill()
                kill_state.update(done=True, at=time.perf_counter(), made=made, posted=posted,
                                  in_flight=in_flight,
                                  offset=victim.log_path.stat().st_size,
                                  mutex_ttl=self._restore_mutex_ttl())
                log(f"SIGKILL {victim.name} at {posted:,}/{expected:,} bills posted, "
                    f"{len(in_flight)} task(s) in flight")
                threading.Timer(KILL_RESTART_SECONDS, lambda: victim.start(wait=False)).start()

        try:
            release = jobs.release_start(request_id=request_id,
                                         bd_username=manifest["release_bd"])
            if not together:
                jobs.wait({"release": (release, lambda: jobs.release_done(request_id))},
                          timeout=timeout)
            billing = jobs.billing_start(day=day)
            pending = {"billing": (billing, lambda: jobs.billing_done(day, expected))}
            if together:
                pending["release"] = (release, lambda: jobs.release_done(request_id))
            jobs.wait(pending, timeout=timeout, on_poll=on_poll)
            out = {"release_s": release.seconds, "billing_s": billing.seconds,
                   "release_end_s": release.done - release.started,
                   "billing_end_s": billing.done - release.started}
        except TimeoutError as exc:
            out = {"error": str(exc)}
        finally:
            connection.close()
        if kill_state["done"]:
            out["kill"] = {k: v for k, v in kill_state.items() if k not in ("at", "offset")}
            out["kill"]["_log"] = str(workers[0].log_path)
            out["kill"]["_offset"] = kill_state["offset"]
        return out

    def _restore_mutex_ttl(self) -> int:
        """Seconds left on kombu's restore mutex (-2: not held). Each worker sweeps the
        unacked messages under it every second; a worker killed inside a sweep leaves it
        held until it expires (unacked_mutex_expire, 300 s by default), and until then no
        worker hands the killed worker's messages out again."""
        import redis

        from couponplatform.celery import app

        key = app.conf.broker_transport_options.get("unacked_mutex_key", "unacked_mutex")
        return int(redis.Redis.from_url(self.broker).ttl(key))

    def drain(self, timeout: float) -> dict:
        from bench.load import jobs

        deadline = time.monotonic() + timeout
        while True:
            left = jobs.settled()
            if not any(left.values()) or time.monotonic() > deadline:
                return left
            time.sleep(1)

    # -- a scenario ----------------------------------------------------------------------

    def scenario(self, name: str, manifest: dict, rate: int | None) -> dict:
        from django.db import connection

        from bench.load import jobs

        connection.close()
        log(f"{name}: fresh copy {self.run_db} of {self.base}")
        result: dict = {"clone_s": dataset.clone(self.url, self.base, self.run_db)}
        web, workers = self._start(name)
        self.web, self.workers = web, workers
        try:
            plan = self._plan(manifest, name)
            log(f"{name}: the release and the billing run alone")
            result["alone"] = self.jobs(manifest, 0, together=False)
            if name == "normal" and self.opts.page_rounds:
                from bench.load import pages

                result["pages"] = pages.measure(host=self.host, manifest=manifest,
                                                rounds=self.opts.page_rounds, log=log)
            if rate is None:
                rate, result["steps"] = self.steps(plan)
                result["rate_found"] = self.found
            result["rate"] = rate
            background: dict = {}

            def during():
                time.sleep(self.opts.run_seconds * 0.25)
                background.update(self.jobs(manifest, 1, together=True, workers=workers,
                                            kill=name == "kill",
                                            timeout=self.opts.run_seconds * 3))

            window = self.locust(plan, rate, self.opts.run_seconds, f"{name}-run", during)
            result["window"] = window
            result["under_load"] = background
            wait = max(120, 4 * self.opts.visibility_timeout)
            ttl = background.get("kill", {}).get("mutex_ttl", -2)
            if ttl > 0:  # the restore waits for the mutex, then for the visibility timeout
                wait += ttl + self.opts.visibility_timeout
            result["left_after_drain"] = self.drain(wait)
            import redis

            result["broker_after_drain"] = {
                "unacked": int(redis.Redis.from_url(self.broker).hlen("unacked")),
                "mutex_ttl": self._restore_mutex_ttl()}
        finally:
            web.stop()
            for w in workers:
                w.stop()
        if "kill" in result["under_load"]:
            result["under_load"]["kill"]["redelivered"] = _redelivered(
                result["under_load"]["kill"], workers)
        log(f"{name}: ledger check and the accounting")
        result["accounting"] = jobs.accounting(manifest)
        connection.close()
        return result

    def run(self) -> int:
        from bench.load import report

        # The build configures Django on a database of its own with tasks in-process: it
        # runs in a child, so this process's Django is the run's alone.
        subprocess.run([sys.executable, "-m", "bench.load.dataset", "--database", self.base,
                        "--scale", self.opts.scale, *(["--rebuild"] if self.opts.rebuild else [])],
                       check=True, stdout=subprocess.DEVNULL)
        manifest = dataset.manifest(self.url, self.base)
        self._django()
        results: dict = {}
        rate = self.opts.rate
        start, load = time.monotonic(), loadavg()
        for name in self.opts.scenarios:
            results[name] = self.scenario(name, manifest, rate)
            rate = results[name]["rate"]
        meta = {"seconds": time.monotonic() - start, "load": (load, loadavg())}
        text = report.render(results, manifest=manifest, opts=self.opts, meta=meta)
        print(text)
        if self.opts.write_doc:
            report.write(text)
            log("figures written to docs/BENCHMARKS.md")
        dataset.drop(self.url, self.run_db)
        return 0 if report.passed(results) else 1


_RECEIVED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] received")
_SUCCEEDED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] succeeded")


def _in_flight(text: str) -> list[str]:
    """Tasks a worker received and had not finished (its log at INFO)."""
    done = {m.group(2) for m in _SUCCEEDED.finditer(text)}
    return [f"{m.group(1)}[{m.group(2)}]" for m in _RECEIVED.finditer(text)
            if m.group(2) not in done]


def _redelivered(kill: dict, workers) -> dict:
    """Of the killed worker's tasks in flight, those that later succeeded somewhere."""
    later = ""
    for w in workers:
        text = w.log_path.read_text(errors="replace")
        later += text[kill["_offset"]:] if str(w.log_path) == kill["_log"] else text
    done = {m.group(2) for m in _SUCCEEDED.finditer(later)}
    ids = [t.split("[")[1].rstrip("]") for t in kill["in_flight"]]
    return {"in_flight": len(ids), "succeeded_after": sum(i in done for i in ids)}
