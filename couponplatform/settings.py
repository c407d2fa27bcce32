"""Settings, read from the environment (cookiecutter-django style).

Defaults give the embedded mode: a SQLite file and Celery tasks run in-process, so the app
runs with nothing installed. Production and CI set DATABASE_URL and CELERY_BROKER_URL.
"""
import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "crispy_forms",
    "crispy_bootstrap5",
    "accounts",
    "audit",
    "coupons",
    "approvals",
    "billing",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "couponplatform.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "couponplatform.urls"
WSGI_APPLICATION = "couponplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.console",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite serialises writers; a busy timeout keeps the embedded server from erroring
    # when a request and an in-process task write at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Writers take the lock when their transaction begins, so a second writer waits for
    # the busy timeout instead of failing with "database is locked" halfway through.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The platform's time zone: bill days, months and validity dates are counted in it.
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Singapore")
USE_I18N = True
FORMAT_MODULE_PATH = ["couponplatform.formats"]
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "coupons@example.com")

# Celery: unset broker means tasks run in-process (the embedded default).
# Without a broker, tasks run eagerly; "memory://" only keeps kombu from looking for a
# broker on localhost.
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
# Above the longest task's time limit, so an unacked task is not redelivered while running.
# The worker tests set a few seconds, to see a killed worker's task redelivered.
visibility_timeout = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": visibility_timeout,
    # kombu waits forever on a broker that stops answering without closing the connection
    # (a hung server, a partition), and so would the web request that publishes on commit.
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
}
# One retry (for a stale pooled connection), then give up: the sweepers (release_sweep,
# daily_bills_post_pending) find the work whose message was never published.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5,
}
if visibility_timeout < 600:
    # kombu looks for unacked messages past the timeout every 10 × 10 s; a short timeout
    # needs a look every second to mean anything.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(unacked_restore_interval=1, unacked_restore_throttle=1)
# Tasks the worker enqueues itself (postings after a release or a bill run) go here too.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TIMEZONE = TIME_ZONE
# Each job is also a management command (run_billing, expire_coupons, close_month).
CELERY_BEAT_SCHEDULE = {
    "billing-yesterday": {"task": "billing.tasks.daily_bills_make_task",
                          "schedule": crontab(hour=0, minute=30)},
    "billing-post-pending": {"task": "billing.tasks.daily_bills_post_pending_task",
                             "schedule": crontab(minute="*/15")},
    "coupons-expire": {"task": "billing.tasks.coupons_expire_task",
                       "schedule": crontab(hour=2, minute=0)},
    "month-close": {"task": "billing.tasks.month_close_task",
                    "schedule": crontab(day_of_month=2, hour=3, minute=0)},
    "release-sweep": {"task": "approvals.tasks.release_sweep", "schedule": crontab(minute="*/5")},
    # Fold the Coupon Usage statistics' delta rows; a run not started within the minute is
    # dropped, the next one does its work.
    "usage-stats-compact": {"task": "billing.tasks.coupon_stats_compact_task",
                            "schedule": crontab(), "options": {"expires": 55}},
}

# Issue Coupon limits.
ISSUE_MAX_ACCOUNTS = int(os.environ.get("ISSUE_MAX_ACCOUNTS", "10000"))
# Requests up to this many accounts are released right after approval; larger ones by a task.
RELEASE_INLINE_MAX = int(os.environ.get("RELEASE_INLINE_MAX", "300"))

# Release progress is shared between the worker and the web through the cache: Redis when
# a broker is configured, process memory in the embedded mode (tasks run in-process).


def _cache_url() -> str:
    """CACHE_URL, or the broker's Redis server with the next database number, so the cache
    never shares (or flushes) the broker's queues."""
    if os.environ.get("CACHE_URL"):
        return os.environ["CACHE_URL"]
    if not CELERY_BROKER_URL.startswith("redis"):
        return ""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(CELERY_BROKER_URL)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


CACHE_URL = _cache_url()
if CACHE_URL.startswith("redis"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CACHE_URL,
                          "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
# How many proxies of our own stand in front of the web process (each appending to
# X-Forwarded-For): the sign-in limits per client read the address the outermost one saw.
# 0: REMOTE_ADDR is the client, and X-Forwarded-For, which a client can write, is not read.
RATELIMIT_TRUSTED_PROXIES = int(os.environ.get("RATELIMIT_TRUSTED_PROXIES", "0"))

SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DATA_UPLOAD_MAX_NUMBER_FIELDS = 12000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
