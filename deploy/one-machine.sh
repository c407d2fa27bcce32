#!/usr/bin/env bash
# `make prod`: the whole production stack on this machine through honcho (deploy/Procfile):
# gunicorn, a Celery worker per kind of queue, beat; PostgreSQL and Redis must be running.
# Every setting may come from the environment (docs/DEPLOY.md); the defaults here are a
# local trial: plain HTTP on 127.0.0.1 (TLS_PROXY=0), a secret key kept in var/, the demo
# data seeded (SEED_DEMO=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
if [ -z "${SECRET_KEY:-}" ]; then
  [ -s var/secret_key ] || (umask 077 && .venv/bin/python -c \
    "import secrets; print(secrets.token_urlsafe(64))" > var/secret_key)
  SECRET_KEY=$(cat var/secret_key)
fi
export SECRET_KEY DEBUG=0
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/couponplatform}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
export TLS_PROXY=${TLS_PROXY:-0}
export PORT=${PORT:-8000}
# Mail to var/mail/, a file per message, instead of into the logs.
export EMAIL_BACKEND=${EMAIL_BACKEND:-django.core.mail.backends.filebased.EmailBackend}
export CELERY_BEAT_SCHEDULE_FILE=${CELERY_BEAT_SCHEDULE_FILE:-var/celerybeat-schedule}

# The database, made when it is missing (a fresh clone).
.venv/bin/python - <<'PY'
import os, sys
from urllib.parse import urlsplit
import psycopg
url = urlsplit(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
try:
    psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5).close()
except psycopg.OperationalError as exc:
    if f'"{name}" does not exist' not in str(exc):
        sys.exit(f"make prod: PostgreSQL at DATABASE_URL does not answer: {exc}")
    with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"make prod: created the database {name}")
PY

deploy/prepare.sh all
if [ "${SEED_DEMO:-1}" != 0 ]; then
  .venv/bin/python manage.py seed_demo --force
fi
echo ""
echo "Serving on http://127.0.0.1:${PORT}/ with gunicorn, Celery workers and beat (Ctrl-C stops them)"
exec .venv/bin/honcho -f deploy/Procfile -d . start
