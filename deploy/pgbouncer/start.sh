#!/usr/bin/env bash
# PgBouncer in transaction pooling mode in front of the local PostgreSQL, for the tests
# that run through it (`make test-pgbouncer`) and for trying it by hand. The production
# configuration is in docs/SCALING.md ("PgBouncer").
#
# Installs Debian's pgbouncer when it is missing (as root), writes its configuration into
# PGBOUNCER_DIR, starts it as the postgres user (PgBouncer refuses to run as root) and waits
# until it answers. Every database of the server is reachable through it by name; clients
# from 127.0.0.1 are trusted. Idempotent; deploy/pgbouncer/stop.sh stops it.
#
#   PGBOUNCER_PORT (16432)  PGBOUNCER_POOL_SIZE (20 server connections per database)
#   PRIMARY_HOST (127.0.0.1)  PRIMARY_PORT (5432)  PGBOUNCER_DIR (a directory of its own
#   under TMPDIR)
set -euo pipefail

PORT="${PGBOUNCER_PORT:-16432}"
POOL_SIZE="${PGBOUNCER_POOL_SIZE:-20}"
PRIMARY_HOST="${PRIMARY_HOST:-127.0.0.1}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
DIR="${PGBOUNCER_DIR:-${TMPDIR:-/tmp}/couponplatform-pgbouncer-$PORT}"
say() { echo "pgbouncer: $*"; }
die() { echo "pgbouncer: $*" >&2; exit 1; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else die "run as root or as the postgres user"; fi
}
answers() { psql -X -h 127.0.0.1 -p "$PORT" -U postgres -d pgbouncer -Atqc "SHOW VERSION" >/dev/null 2>&1; }

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    || die "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
  say "installing Debian's pgbouncer"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

if answers; then
  say "already answering on 127.0.0.1:$PORT ($DIR)"
  exit 0
fi

mkdir -p "$DIR"
chown postgres:postgres "$DIR" 2>/dev/null || true
echo '"postgres" ""' > "$DIR/userlist.txt"
cat > "$DIR/pgbouncer.ini" <<EOF
; Written by deploy/pgbouncer/start.sh.
[databases]
* = host=$PRIMARY_HOST port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
; A server connection serves a client for one transaction, then the next client: what
; the app is written for (no session state: xact advisory locks, SET LOCAL, no
; server-side cursors with DATABASE_TRANSACTION_POOLING).
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 1000
; Test databases come and go: drop idle server connections soon, so nothing holds one
; when it is dropped.
server_idle_timeout = 5
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
chown postgres:postgres "$DIR"/* 2>/dev/null || true
as_postgres "$PGBOUNCER" -d -q "$DIR/pgbouncer.ini"
for _ in $(seq 1 50); do answers && break; sleep 0.2; done
answers || { tail -20 "$DIR/pgbouncer.log" >&2; die "pgbouncer does not answer on $PORT"; }
say "transaction pooling on 127.0.0.1:$PORT, $POOL_SIZE server connections per database ($DIR)"
