"""The files that run production (deploy/): gunicorn's sizes from the environment, and the
systemd units, which systemd's own checker accepts."""
import os
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from couponplatform.env import EnvError

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"


def gunicorn_conf(monkeypatch, **environ) -> dict:
    for name in ("PORT", "WEB_BIND", "WEB_WORKERS", "WEB_THREADS", "WEB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))


def test_gunicorn_defaults_suit_two_cores(monkeypatch):
    conf = gunicorn_conf(monkeypatch)
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (2, 4, "gthread")
    assert conf["bind"] == "127.0.0.1:8000"
    assert conf["preload_app"] is True and conf["accesslog"] is None
    assert conf["timeout"] == 30 and conf["max_requests"] == 2000


def test_gunicorn_sizes_come_from_the_environment(monkeypatch):
    conf = gunicorn_conf(monkeypatch, PORT="8105", WEB_WORKERS="4", WEB_THREADS="8")
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("127.0.0.1:8105", 4, 8)
    assert gunicorn_conf(monkeypatch, WEB_BIND="10.0.1.11:8000")["bind"] == "10.0.1.11:8000"
    with pytest.raises(EnvError, match="WEB_THREADS: 0 is below the least allowed, 1"):
        gunicorn_conf(monkeypatch, WEB_THREADS="0")


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """The units as committed, with the install path and the environment file pointed at
    this checkout (verify checks that each ExecStart exists and is executable)."""
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI"):
            pytest.fail("CI must run this test: systemd-analyze is not installed")
        pytest.skip("systemd-analyze is not installed")
    for unit in UNITS.iterdir():
        text = (unit.read_text().replace("/srv/couponplatform", str(ROOT))
                .replace("/etc/couponplatform/env", str(UNITS / "coupons.env.example")))
        (tmp_path / unit.name).write_text(text)
    # The template as one of its instances: %i is the queue.
    (tmp_path / "coupons-worker@posting.service").write_text(
        (tmp_path / "coupons-worker@.service").read_text())
    names = ["coupons-web.service", "coupons-beat.service", "coupons-migrate.service",
             "coupons-worker@posting.service", "coupons.target"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *[f"./{n}" for n in names]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_units_run_the_project_commands():
    web = (UNITS / "coupons-web.service").read_text()
    assert "ExecStartPre=/srv/couponplatform/deploy/prepare.sh static" in web
    assert "gunicorn -c deploy/gunicorn.conf.py" in web
    assert "prepare.sh migrate" in (UNITS / "coupons-migrate.service").read_text()
    beat = (UNITS / "coupons-beat.service").read_text()
    assert "celery -A couponplatform beat" in beat
    for unit in UNITS.glob("*.service"):
        assert "EnvironmentFile=/etc/couponplatform/env" in unit.read_text(), unit.name


def test_every_variable_read_is_in_the_deploy_guide():
    """docs/DEPLOY.md's table stays true: each variable settings.py, gunicorn's
    configuration, the Procfile and make prod read is in it."""
    import re

    sources = {
        "couponplatform/settings.py": r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"',
        "deploy/gunicorn.conf.py": r'env\.\w+\(\s*["\']([A-Z][A-Z0-9_]+)["\']',
        "deploy/Procfile": r"\$\{([A-Z][A-Z0-9_]+)",
        "deploy/one-machine.sh": r"\$\{([A-Z][A-Z0-9_]+)",
    }
    read = set()
    for path, pattern in sources.items():
        read |= set(re.findall(pattern, (ROOT / path).read_text()))
    assert {"SECRET_KEY", "DATABASE_CONNECT_TIMEOUT", "WEB_THREADS", "POSTING_CONCURRENCY",
            "SEED_DEMO", "PORT"} <= read
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", guide))
    assert read - documented == set()
