"""Settings from the environment (couponplatform/env.py, settings.py): in production a
missing or malformed variable stops start-up with a message naming it; the production
settings pass `check --deploy` with no warning; development needs no variable at all."""
import json
import sys

import pytest

from couponplatform import env
from tests.platform.conftest import manage, run


@pytest.fixture
def environ(monkeypatch):
    def set_(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_


# --- the readers, one by one -------------------------------------------------------------

@pytest.mark.parametrize(("raw", "value"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False),
])
def test_booleans_read(environ, raw, value):
    environ(FLAG=raw)
    assert env.boolean("FLAG", not value) is value


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "ja"])
def test_a_malformed_boolean_is_refused_by_name(environ, raw):
    environ(FLAG=raw)
    with pytest.raises(env.EnvError, match=r"^Environment variable FLAG: .* is not a boolean"):
        env.boolean("FLAG", True)


def test_an_unset_variable_gives_its_default(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    assert env.boolean("NOT_SET_ANYWHERE", True) is True
    assert env.integer("NOT_SET_ANYWHERE", 7) == 7
    assert env.items("NOT_SET_ANYWHERE", "a, b,,c") == ["a", "b", "c"]


@pytest.mark.parametrize(("raw", "problem"), [
    ("3x", "is not a whole number"), ("1.5", "is not a whole number"),
    ("1e3", "is not a whole number"), ("-1", "below the least allowed, 0"),
    ("99999999", "above the most allowed, 65535"),
])
def test_a_malformed_integer_is_refused_by_name(environ, raw, problem):
    environ(NUMBER=raw)
    with pytest.raises(env.EnvError, match=f"^Environment variable NUMBER: .*{problem}"):
        env.integer("NUMBER", 1, minimum=0, maximum=65535)


@pytest.mark.parametrize(("raw", "problem"), [
    ("mysql://db/x", "the scheme 'mysql' is not one of"),
    ("db.internal:5432/x", "the scheme 'db.internal' is not one of"),
    ("postgres:///coupons", "names no host"),
])
def test_a_malformed_url_is_refused_by_name(environ, raw, problem):
    environ(SOME_URL=raw)
    with pytest.raises(env.EnvError, match=f"^Environment variable SOME_URL: {problem}"):
        env.url("SOME_URL", None, schemes=("postgres",))


def test_a_required_url_that_is_missing_is_refused_by_name(monkeypatch):
    monkeypatch.delenv("SOME_URL", raising=False)
    with pytest.raises(env.EnvError, match="^Environment variable SOME_URL: must be set"):
        env.url("SOME_URL", None, schemes=("redis",), why="when DEBUG is off")


@pytest.mark.parametrize("raw", ["coupons.example.com", "https://", "ftp://x.example.com"])
def test_an_origin_without_scheme_or_host_is_refused(environ, raw):
    environ(CSRF_TRUSTED_ORIGINS=f"https://ok.example.com,{raw}")
    with pytest.raises(env.EnvError, match="CSRF_TRUSTED_ORIGINS: .* is not an origin"):
        env.origins("CSRF_TRUSTED_ORIGINS")


def test_origins_read(environ):
    environ(CSRF_TRUSTED_ORIGINS="https://a.example.com, https://b.example.com:8443")
    assert env.origins("CSRF_TRUSTED_ORIGINS") == ["https://a.example.com",
                                                   "https://b.example.com:8443"]


@pytest.mark.parametrize("raw", ["Mars/Olympus_Mons", "UTC+8", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused(environ, raw):
    environ(TIME_ZONE=raw)
    with pytest.raises(env.EnvError, match="TIME_ZONE: .* is not a time zone"):
        env.time_zone("TIME_ZONE", "Asia/Singapore")


@pytest.mark.parametrize(("raw", "problem"), [
    ("", "must be set when DEBUG is off"),
    ("short-key", "is too weak"),
    ("a" * 60, "is too weak"),  # fewer than 5 distinct characters
    ("django-insecure-" + "q7Wz" * 12, "is too weak"),
])
def test_production_refuses_a_missing_or_weak_secret_key(environ, raw, problem):
    environ(SECRET_KEY=raw)
    with pytest.raises(env.EnvError, match=f"^Environment variable SECRET_KEY: {problem}"):
        env.secret_key("SECRET_KEY", production=True)


def test_development_has_a_secret_key_without_the_variable(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert env.secret_key("SECRET_KEY", production=False)


# --- start-up in a fresh process ----------------------------------------------------------

@pytest.mark.parametrize(("overrides", "named"), [
    ({"SECRET_KEY": None}, "SECRET_KEY: must be set when DEBUG is off"),
    ({"SECRET_KEY": "changeme"}, "SECRET_KEY: is too weak"),
    ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS: must be set when DEBUG is off"),
    ({"DATABASE_URL": None}, "DATABASE_URL: must be set to a PostgreSQL URL"),
    ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL: the scheme 'sqlite'"),
    ({"CELERY_BROKER_URL": None}, "CELERY_BROKER_URL: must be set to a Redis URL"),
    ({"CELERY_BROKER_URL": "amqp://mq/"}, "CELERY_BROKER_URL: the scheme 'amqp'"),
    ({"DEBUG": "nope"}, "DEBUG: 'nope' is not a boolean"),
    ({"CONN_MAX_AGE": "sixty"}, "CONN_MAX_AGE: 'sixty' is not a whole number"),
    ({"TLS_PROXY": "sometimes"}, "TLS_PROXY: 'sometimes' is not a boolean"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: 'xml' is not one of json, text"),
])
def test_start_up_stops_naming_the_missing_or_malformed_variable(overrides, named):
    result = manage("check", **overrides)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, "the message, not a traceback"


def test_gunicorn_refuses_to_start_naming_the_variable():
    """The web process loads the app before it binds (preload_app): a bad variable stops the
    master at once, with the message, instead of workers failing to boot in a loop."""
    result = run([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                 SECRET_KEY=None, WEB_BIND="127.0.0.1:0")
    assert result.returncode != 0
    assert "Environment variable SECRET_KEY: must be set" in result.stdout + result.stderr


def test_gunicorn_refuses_a_malformed_size():
    result = run([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                  "--check-config"], WEB_WORKERS="two")
    assert result.returncode != 0
    assert "WEB_WORKERS: 'two' is not a whole number" in result.stdout + result.stderr


def test_check_deploy_passes_with_no_warning():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_are_the_hardened_ones():
    names = ["DEBUG", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
             "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_REDIRECT_EXEMPT",
             "CONN_MAX_AGE", "LOG_FORMAT", "ACCESS_LOG", "CELERY_TASK_ALWAYS_EAGER"]
    result = manage("shell", "-c", (
        "import json; from django.conf import settings as s; print(json.dumps({"
        + ", ".join(f"'{n}': getattr(s, '{n}', None)" for n in names)
        + ", 'storage': s.STORAGES['staticfiles']['BACKEND'],"
          " 'conn': s.DATABASES['default']['CONN_MAX_AGE']}))"),
        CSRF_TRUSTED_ORIGINS="https://coupons.example.com")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {
        "DEBUG": False, "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000, "SECURE_REDIRECT_EXEMPT": ["^healthz$", "^readyz$"],
        "CONN_MAX_AGE": None, "LOG_FORMAT": "json", "ACCESS_LOG": True,
        "CELERY_TASK_ALWAYS_EAGER": False,
        "storage": "couponplatform.storage.StaticFilesStorage", "conn": 60,
    }


def test_development_starts_with_no_variable_at_all():
    """`make run`: SQLite, tasks in-process, DEBUG on, nothing to set."""
    result = manage("shell", "-c", (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
        "getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.LOG_FORMAT)"),
        DEBUG=None, SECRET_KEY=None, ALLOWED_HOSTS=None, DATABASE_URL=None,
        CELERY_BROKER_URL=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "True", "django.db.backends.sqlite3", "True", "None", "text"]
