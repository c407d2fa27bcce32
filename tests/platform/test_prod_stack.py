"""`make prod`'s stack as real processes (deploy/one-machine.sh through honcho: gunicorn,
the Celery workers per queue, beat) on PostgreSQL and a Redis of the test's own; and the
web process alone with its database or its broker unreachable."""
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from tests import factories as f
from tests.integration.processes import database_url, free_port
from tests.platform.conftest import ROOT, SECRET, child_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def get(opener, url, data=None, headers=None, timeout=10):
    """(status, headers, body) of a request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


def wait_until_answers(url, proc, log, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    plain = urllib.request.build_opener()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if get(plain, url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 in {timeout}s:\n{log.read_text()[-4000:]}")


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def stack_env(worker_ready_db, private_redis, tmp_path):
    port = free_port()
    return port, child_env(
        DATABASE_URL=database_url(connection.settings_dict),
        CELERY_BROKER_URL=private_redis.url, SECRET_KEY=SECRET, PORT=str(port),
        ALLOWED_HOSTS="127.0.0.1", TLS_PROXY="0", SEED_DEMO="0",
        STATIC_ROOT=str(tmp_path / "static"), EMAIL_FILE_PATH=str(tmp_path / "mail"),
        CELERY_BEAT_SCHEDULE_FILE=str(tmp_path / "beat-schedule"),
        WEB_WORKERS="1", WEB_THREADS="2", RELEASE_CONCURRENCY="1", POSTING_CONCURRENCY="1",
        OTHER_CONCURRENCY="1", PYTHONUNBUFFERED="1",
    )


def test_make_prod_serves_a_signed_in_page_with_workers_and_beat(stack_env, settings, tmp_path):
    port, environment = stack_env
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    partner = f.make_partner(name="Stack Partner")
    admin = f.make_member(partner, username="stack-admin")
    admin.password = make_password("stack-pw")
    admin.save(update_fields=["password"])
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["deploy/one-machine.sh"], cwd=ROOT, env=environment,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/readyz", proc, log)
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, _, page = get(opener, f"{base}/accounts/login/")
        assert status == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = f"csrfmiddlewaretoken={token}&username=stack-admin&password=stack-pw".encode()
        status, _, _ = get(opener, f"{base}/accounts/login/", data=form)
        assert status == 200  # followed the redirect home
        status, headers, page = get(opener, f"{base}/coupons/templates/",
                                    headers={"X-Request-ID": "stack-templates-1"})
        assert status == 200 and "Templates" in page
        assert headers["X-Request-ID"] == "stack-templates-1"
        # Static files by whitenoise: hashed names, compressed, cached for good.
        css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page).group(1)
        status, headers, _ = get(opener, base + css, headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert "immutable" in headers["Cache-Control"]
        status, _, body = get(opener, f"{base}/readyz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        # Every process is up: a worker per queue and beat, logging JSON lines.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if all(f"{name}.1 " in text for name in ("release", "posting", "other", "beat")):
                break
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        lines = [json.loads(line.split("| ", 1)[1]) for line in text.splitlines()
                 if "| {" in line and line.split("| ", 1)[1].startswith("{")]
        request_lines = [line for line in lines if line.get("request_id") == "stack-templates-1"
                         and line.get("event") == "request"]
        assert len(request_lines) == 1, text[-4000:]
        assert (request_lines[0]["status"], request_lines[0]["user"],
                request_lines[0]["partner"]) == (200, admin.pk, partner.pk)
        for name in ("web", "release", "posting", "other", "beat"):
            assert f"{name}.1 " in text, f"no output of {name}:\n{text[-4000:]}"
    finally:
        stop(proc)
    assert "stopped" in log.read_text()


def collect_static(environment: dict) -> dict:
    """collectstatic into environment's STATIC_ROOT, as the start-up does (a page's
    {% static %} needs the manifest when DEBUG is off); the manifest."""
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"],
                               cwd=ROOT, env=child_env(**environment), capture_output=True,
                               text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    return json.loads((Path(environment["STATIC_ROOT"]) / "staticfiles.json").read_text())


def web_alone(tmp_path, **overrides):
    port = free_port()
    log = tmp_path / "web.log"
    environment = child_env(SECRET_KEY=SECRET, PORT=str(port), ALLOWED_HOSTS="127.0.0.1",
                            TLS_PROXY="0", **overrides)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                                 "--workers", "1"], cwd=ROOT, env=environment, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_until_answers(f"http://127.0.0.1:{port}/healthz", proc, log)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> tuple[str, dict]:
    """collectstatic once for the web-alone tests, with no database to reach (it needs
    none): the folder and its manifest."""
    root = str(tmp_path_factory.mktemp("static"))
    return root, collect_static({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/x",
                                 "STATIC_ROOT": root})


def test_web_with_the_database_down_keeps_answering_healthz_and_readyz_says_503(
    worker_ready_db, private_redis, tmp_path, static_root,
):
    root, manifest = static_root
    dead = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/x",
            "CELERY_BROKER_URL": private_redis.url, "STATIC_ROOT": root}
    css = "/static/" + manifest["paths"]["css/app.css"]
    proc, base = web_alone(tmp_path, **dead)
    try:
        plain = urllib.request.build_opener()
        assert get(plain, f"{base}/healthz")[0] == 200
        status, _, body = get(plain, f"{base}/readyz")
        assert status == 503
        assert json.loads(body) == {"status": "unavailable: database, migrations", "checks": {
            "database": "unreachable (OperationalError)", "broker": "ok",
            "migrations": "unknown (database unreachable)"}}
        assert get(plain, base + css)[0] == 200  # static files need no database
    finally:
        stop(proc)


def test_web_with_the_broker_down_serves_pages_and_readyz_says_503(
    worker_ready_db, tmp_path, static_root,
):
    down = {"DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
            "STATIC_ROOT": static_root[0]}
    proc, base = web_alone(tmp_path, **down)
    try:
        plain = urllib.request.build_opener()
        status, _, body = get(plain, f"{base}/readyz")
        assert status == 503
        assert json.loads(body)["status"] == "unavailable: broker"
        assert json.loads(body)["checks"]["database"] == "ok"
        # The sign-in page needs neither the broker nor the cache (on the broker's server).
        started = time.monotonic()
        assert get(plain, f"{base}/accounts/login/")[0] == 200
        assert time.monotonic() - started < 5
    finally:
        stop(proc)
