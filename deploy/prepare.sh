#!/usr/bin/env bash
# Before the processes start (a new release, a machine's boot): apply the migrations and
# collect the static files with hashed, compressed names for whitenoise. Safe to run again.
# On several machines: migrate once (coupons-migrate.service), collectstatic on each web node.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
case "${1:-all}" in
  migrate) "$PY" manage.py migrate --noinput ;;
  static)  "$PY" manage.py collectstatic --noinput -v 0 ;;
  all)     "$PY" manage.py migrate --noinput && "$PY" manage.py collectstatic --noinput -v 0 ;;
  *) echo "usage: deploy/prepare.sh [migrate|static|all]" >&2; exit 2 ;;
esac
