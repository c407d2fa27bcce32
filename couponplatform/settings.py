"""Settings, read from the environment (cookiecutter-django style) through
couponplatform/env.py, which stops start-up naming a missing or malformed variable.

Defaults give the embedded mode: a SQLite file and Celery tasks run in-process, so the app
runs with nothing installed. With DEBUG off (production, docs/DEPLOY.md) SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) must be set.
"""
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from couponplatform import env, queues

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.boolean("DEBUG", True)
PRODUCTION = not DEBUG
SECRET_KEY = env.secret_key("SECRET_KEY", production=PRODUCTION)
if PRODUCTION:
    ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", "")
    if not ALLOWED_HOSTS:
        raise env.EnvError("ALLOWED_HOSTS", "must be set when DEBUG is off (the site's host "
                                            "names, comma-separated)")
else:
    ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env.origins("CSRF_TRUSTED_ORIGINS")

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
    # The API's docs page from ninja's own static files (its CDN template otherwise).
    "ninja",
    "accounts",
    "audit",
    "coupons",
    "approvals",
    "billing",
    "api",
    "demo",
]

MIDDLEWARE = [
    # Outermost: every response, redirects and refusals too, gets its request id and its
    # log line; the health checks answer next, before the host check, sessions and the
    # HTTPS redirect (a load balancer probes by address, over plain HTTP).
    "couponplatform.logs.RequestLogMiddleware",
    "couponplatform.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "couponplatform.middleware.SecurityHeadersMiddleware",
    "api.middleware.ApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session, before CommonMiddleware (Django's order): the language cookie,
    # then Accept-Language; a signed-in user's own choice is applied after authentication.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "couponplatform.routers.PrimaryAfterWriteMiddleware",
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
            # The project's own tags (couponplatform is not an app): {% load money %}.
            "libraries": {"money": "couponplatform.templatetags.money"},
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env.url("DATABASE_URL", None if PRODUCTION else f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
                schemes=("postgres", "postgresql", "pgsql") if PRODUCTION else
                ("postgres", "postgresql", "pgsql", "sqlite"),
                why="to a PostgreSQL URL when DEBUG is off"),
        # Production keeps a connection a minute (checked before reuse), not one per request.
        conn_max_age=env.integer("CONN_MAX_AGE", 0 if DEBUG else 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that does not answer fails the request (and /readyz) in seconds, not in
    # the kernel's minutes.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.integer(
        "DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite serialises writers; a busy timeout keeps the embedded server from erroring
    # when a request and an in-process task write at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Writers take the lock when their transaction begins, so a second writer waits for
    # the busy timeout instead of failing with "database is locked" halfway through.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
# A streaming replica for the heavy read pages (couponplatform/routers.py). In tests it
# reads the primary's test database: the MIRROR keeps the runner from making one on it,
# and tests/replica/conftest.py points it at the test database's name on the replica's
# server.
if env.raw("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        env.url("DATABASE_REPLICA_URL", None, schemes=("postgres", "postgresql")),
        conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        conn_health_checks=True,
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["couponplatform.routers.PrimaryReplicaRouter"]
# A user's reads go to the primary for this long after a request of theirs that wrote.
REPLICA_STICKY_SECONDS = env.integer("REPLICA_STICKY_SECONDS", 10, minimum=0)
# A replica further behind than this, or not answering, is not read (looked at every
# REPLICA_CHECK_SECONDS per process). With the sticky time at least their sum, a user's
# own write is on whichever database they read.
REPLICA_MAX_LAG_SECONDS = env.seconds("REPLICA_MAX_LAG_SECONDS", 5)
REPLICA_CHECK_SECONDS = env.seconds("REPLICA_CHECK_SECONDS", 5)
if REPLICA_STICKY_SECONDS < REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_SECONDS:
    raise env.EnvError(
        "REPLICA_STICKY_SECONDS", "must be at least REPLICA_MAX_LAG_SECONDS + "
        "REPLICA_CHECK_SECONDS, or a user could read the replica before their own write "
        "reached it")
# Behind PgBouncer in transaction pooling mode a cursor declared in one transaction may be
# fetched on another server connection: no server-side cursors (QuerySet.iterator() then
# fetches in chunks on the client). docs/SCALING.md, "PgBouncer".
DATABASE_TRANSACTION_POOLING = env.boolean("DATABASE_TRANSACTION_POOLING", False)
if DATABASE_TRANSACTION_POOLING:
    for _database in DATABASES.values():
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# English by default; Simplified Chinese (PRODUCT §14). A signed-in user's choice is kept on
# their user (User.language) and in the language cookie; anonymous visitors get their
# browser's Accept-Language. The catalogs are locale/zh_Hans (compiled .mo committed).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
# The platform's time zone: bill days, months and validity dates are counted in it.
TIME_ZONE = env.time_zone("TIME_ZONE", "Asia/Singapore")
USE_I18N = True
# Dates YYYY-MM-DD and amounts with a decimal point in both languages (formats/en, zh_Hans).
FORMAT_MODULE_PATH = ["couponplatform.formats"]
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.string("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production: whitenoise serves collectstatic's output, names hashed (cached for ever)
    # and compressed (gzip, brotli when installed). Development and tests keep Django's
    # plain storage, which needs no collectstatic.
    "staticfiles": {"BACKEND": "couponplatform.storage.StaticFilesStorage"
                    if PRODUCTION else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"

EMAIL_BACKEND = env.string("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "coupons@example.com")
# For the SMTP backend (production): a mail server that hangs fails the mail task, which
# tries again later, instead of holding a worker.
EMAIL_HOST = env.string("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT", 10, minimum=1)
# For the file-based backend (`make prod`'s default): one file per mail sent.
EMAIL_FILE_PATH = env.string("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))

# Celery: unset broker means tasks run in-process (the embedded default).
# Without a broker, tasks run eagerly; "memory://" only keeps kombu from looking for a
# broker on localhost.
CELERY_BROKER_URL = env.url("CELERY_BROKER_URL", None if PRODUCTION else "",
                            schemes=("redis", "rediss"), why="to a Redis URL when DEBUG is off")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost/"
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
visibility_timeout = env.integer("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
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
# Each task's queue (couponplatform/queues.py). CELERY_ONE_QUEUE puts every task on that one
# queue instead: the worker tests and benchmarks, each run on a queue of its own.
CELERY_ONE_QUEUE = env.string("CELERY_ONE_QUEUE", "")
CELERY_TASK_DEFAULT_QUEUE = CELERY_ONE_QUEUE or queues.DEFAULT
CELERY_TASK_ROUTES = queues.task_routes(CELERY_ONE_QUEUE)
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
    "api-idempotency-purge": {"task": "api.tasks.idempotency_purge_task",
                              "schedule": crontab(hour=3, minute=30)},
    # Webhook deliveries that are due again, or whose worker or message was lost.
    "api-webhook-sweep": {"task": "api.tasks.webhook_sweep_task", "schedule": crontab(),
                          "options": {"expires": 55}},
    "usage-stats-compact": {"task": "billing.tasks.coupon_stats_compact_task",
                            "schedule": crontab(), "options": {"expires": 55}},
}

# Issue Coupon limits.
ISSUE_MAX_ACCOUNTS = env.integer("ISSUE_MAX_ACCOUNTS", 10000, minimum=1)
# Requests up to this many accounts are released right after approval; larger ones by a task.
RELEASE_INLINE_MAX = env.integer("RELEASE_INLINE_MAX", 300, minimum=0)

# Release progress is shared between the worker and the web through the cache: Redis when
# a broker is configured, process memory in the embedded mode (tasks run in-process).


def _cache_url() -> str:
    """CACHE_URL, or the broker's Redis server with the next database number, so the cache
    never shares (or flushes) the broker's queues."""
    if env.raw("CACHE_URL"):
        return env.url("CACHE_URL", "", schemes=("redis", "rediss"))
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
                          "KEY_PREFIX": env.string("CACHE_KEY_PREFIX", "")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
RATELIMIT_ENABLED = env.boolean("RATELIMIT_ENABLED", True)
# How many proxies of our own stand in front of the web process (each appending to
# X-Forwarded-For): the sign-in limits per client read the address the outermost one saw.
# 0: REMOTE_ADDR is the client, and X-Forwarded-For, which a client can write, is not read.
RATELIMIT_TRUSTED_PROXIES = env.integer("RATELIMIT_TRUSTED_PROXIES", 0, minimum=0)

SESSION_COOKIE_AGE = env.integer("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
# The partner API (docs/API.md): each key's token bucket holds API_RATELIMIT_BURST
# requests and refills API_RATELIMIT_PER_SECOND a second; idempotency keys are kept this
# many days.
API_RATELIMIT_BURST = env.integer("API_RATELIMIT_BURST", 100, minimum=1)
API_RATELIMIT_PER_SECOND = env.seconds("API_RATELIMIT_PER_SECOND", 25)
API_IDEMPOTENCY_DAYS = env.integer("API_IDEMPOTENCY_DAYS", 7, minimum=1)
# Webhooks (docs/API.md): each attempt's connect and read timeout in seconds; how long a
# delivery is retried; and whether endpoints may be http:// and resolve to private,
# loopback or link-local addresses (development and tests only: never in production, where
# a partner's URL could otherwise reach the platform's own network).
WEBHOOK_TIMEOUT = env.seconds("WEBHOOK_TIMEOUT", 5, minimum=0.1)
WEBHOOK_RETRY_HOURS = env.integer("WEBHOOK_RETRY_HOURS", 24, minimum=1)
WEBHOOK_ALLOW_LOCAL = env.boolean("WEBHOOK_ALLOW_LOCAL", DEBUG)

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Production stands behind a TLS proxy that sets X-Forwarded-Proto (docs/DEPLOY.md): HTTPS
# redirect, secure cookies, HSTS. TLS_PROXY=0 is plain HTTP, for `make prod` on 127.0.0.1 only
# (`check --deploy` then warns, rightly).
TLS_PROXY = env.boolean("TLS_PROXY", PRODUCTION)
if TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
    # The probes of a load balancer or a process manager come over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

DATA_UPLOAD_MAX_NUMBER_FIELDS = 12000

# One JSON line per request and per task on stdout in production (couponplatform/logs.py);
# development keeps plain text and runserver's own request lines.
LOG_FORMAT = env.choice("LOG_FORMAT", "text" if DEBUG else "json", ("json", "text"))
LOG_LEVEL = env.choice("LOG_LEVEL", "WARNING", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
ACCESS_LOG = env.boolean("ACCESS_LOG", PRODUCTION)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "couponplatform.logs.JsonFormatter"},
                   "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                             "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The request and task lines (INFO) pass to the root's handler whatever its level.
    "loggers": {name: {"level": "INFO" if ACCESS_LOG else "WARNING"}
                for name in ("couponplatform.access", "couponplatform.tasks")},
}
