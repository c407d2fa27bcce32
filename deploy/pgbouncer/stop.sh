#!/usr/bin/env bash
# Stops the PgBouncer deploy/pgbouncer/start.sh started (by its pid file). Idempotent.
set -euo pipefail

PORT="${PGBOUNCER_PORT:-16432}"
DIR="${PGBOUNCER_DIR:-${TMPDIR:-/tmp}/couponplatform-pgbouncer-$PORT}"
PIDFILE="$DIR/pgbouncer.pid"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  pid="$(cat "$PIDFILE")"
  kill -INT "$pid"  # SIGINT: safe shutdown (PAUSE, then SHUTDOWN): running transactions end first
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "pgbouncer: stopped (pid $pid)"
fi
