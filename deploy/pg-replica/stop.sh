#!/usr/bin/env bash
# Stops the replica deploy/pg-replica/setup.sh made and drops its replication slot on the
# primary (a slot nobody reads would keep WAL on the primary for ever). The data
# directory stays, so the next setup.sh starts it again and it catches up; REMOVE=1
# deletes it too. Idempotent.
set -euo pipefail

PRIMARY_HOST="${PRIMARY_HOST:-127.0.0.1}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
REPLICA_PORT="${REPLICA_PORT:-15433}"
SLOT="cp_replica_${REPLICA_PORT}"
say() { echo "pg-replica: $*"; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else echo "pg-replica: run as root or as the postgres user" >&2; exit 1; fi
}
primary_sql() { psql -X -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d postgres -Atqc "$1"; }

MAJOR="$(primary_sql "SELECT current_setting('server_version_num')::int / 10000" 2>/dev/null || echo 15)"
BIN="/usr/lib/postgresql/$MAJOR/bin"
REPLICA_DIR="${REPLICA_DIR:-/var/lib/postgresql/$MAJOR/cp-replica-$REPLICA_PORT}"

if [ -d "$REPLICA_DIR" ] && as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1; then
  as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w -t 60 stop >/dev/null
  say "stopped the replica on 127.0.0.1:$REPLICA_PORT"
fi
if [ "$(primary_sql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'" 2>/dev/null)" = 1 ]; then
  primary_sql "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null && say "dropped slot $SLOT"
fi
if [ "${REMOVE:-0}" = 1 ] && [ -d "$REPLICA_DIR" ]; then
  rm -rf "$REPLICA_DIR"
  say "removed $REPLICA_DIR"
fi
