#!/usr/bin/env bash
# A streaming replica of the local PostgreSQL primary, on this machine, for the replica
# tests (`make test-replica`) and for trying the router by hand (docs/SCALING.md).
#
# Makes a second cluster with pg_basebackup (the primary's whole cluster, so a database
# created on the primary later, such as a test database, streams to it too), starts it as
# a hot standby on REPLICA_PORT and waits until it streams. Idempotent: a replica already
# streaming is left alone, a stopped one is started, a broken one is made again. Run as
# root (CI) or as the postgres user. deploy/pg-replica/stop.sh stops it.
#
#   PRIMARY_HOST (127.0.0.1)  PRIMARY_PORT (5432)  REPLICA_PORT (15433)
#   REPLICA_DIR  (/var/lib/postgresql/<major>/cp-replica-<port>)
set -euo pipefail

PRIMARY_HOST="${PRIMARY_HOST:-127.0.0.1}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
REPLICA_PORT="${REPLICA_PORT:-15433}"
SLOT="cp_replica_${REPLICA_PORT}"
say() { echo "pg-replica: $*"; }
die() { echo "pg-replica: $*" >&2; exit 1; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else die "run as root or as the postgres user"; fi
}
primary_sql() { psql -X -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d postgres -Atqc "$1"; }
replica_sql() { psql -X -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -Atqc "$1"; }

pg_isready -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -q \
  || die "the primary at $PRIMARY_HOST:$PRIMARY_PORT is not answering"
MAJOR="$(primary_sql "SELECT current_setting('server_version_num')::int / 10000")"
BIN="/usr/lib/postgresql/$MAJOR/bin"
[ -x "$BIN/pg_ctl" ] || die "PostgreSQL $MAJOR's binaries are not in $BIN"
REPLICA_DIR="${REPLICA_DIR:-/var/lib/postgresql/$MAJOR/cp-replica-$REPLICA_PORT}"

streaming() {
  [ "$(replica_sql "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ] \
    && [ "$(replica_sql "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ]
}
wait_streaming() {
  for _ in $(seq 1 "${1:-60}"); do streaming && return 0; sleep 0.5; done
  return 1
}

not_started() {
  tail -20 "$REPLICA_DIR/replica.log" >&2
  # A standby opens for reads once it knows every transaction open on the primary; one
  # with more than 64 subtransactions (savepoints) hides them until it ends.
  echo "pg-replica: transactions open on the primary for over a minute (a standby waits for one with many savepoints):" >&2
  primary_sql "SELECT pid, datname, now() - xact_start FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute' ORDER BY xact_start LIMIT 5" >&2 || true
  die "the replica did not start"
}
if streaming; then
  say "already streaming on 127.0.0.1:$REPLICA_PORT ($REPLICA_DIR)"
  exit 0
fi

# The primary: WAL for a standby (replica is PostgreSQL's default level), senders, and a
# replication line in pg_hba.conf for 127.0.0.1 (reloaded, never restarted).
case "$(primary_sql "SHOW wal_level")" in
  replica|logical) ;;
  *) die "the primary's wal_level must be replica or logical (a restart of the primary)";;
esac
[ "$(primary_sql "SHOW max_wal_senders")" -gt 0 ] || die "the primary's max_wal_senders is 0"
HBA="$(primary_sql "SHOW hba_file")"
if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32' "$HBA"; then
  [ -w "$HBA" ] || die "$HBA needs 'host replication postgres 127.0.0.1/32 trust' (not writable here)"
  say "allowing replication from 127.0.0.1 in $HBA"
  printf '\n# Added by deploy/pg-replica/setup.sh: the local streaming replica.\nhost replication postgres 127.0.0.1/32 trust\n' >> "$HBA"
  primary_sql "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
fi

# A replica that was made before and stopped: start it and see whether it catches up.
slot_exists() {
  [ "$(primary_sql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" != 0 ]
}
if [ -f "$REPLICA_DIR/standby.signal" ]; then
  # stop.sh dropped the slot; the primary may still hold the WAL since then.
  slot_exists || primary_sql "SELECT pg_create_physical_replication_slot('$SLOT', true)" >/dev/null
  if ! as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1; then
    say "starting the replica made before"
    # It opens for reads once it has the primary's WAL since it stopped, which the primary
    # may have recycled: then it is made anew below.
    as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/replica.log" -w -t 60 start >/dev/null \
      || true
  fi
  if wait_streaming 20; then
    say "streaming on 127.0.0.1:$REPLICA_PORT"
    exit 0
  fi
  say "the replica in $REPLICA_DIR does not stream: making it again"
fi

# Make it anew.
if [ -d "$REPLICA_DIR" ]; then
  as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$REPLICA_DIR"
fi
if slot_exists; then
  primary_sql "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
fi
mkdir -p "$(dirname "$REPLICA_DIR")"
chown postgres:postgres "$(dirname "$REPLICA_DIR")" 2>/dev/null || true
# -R writes standby.signal and primary_conninfo; -C -S a physical slot, so the primary
# keeps the WAL the replica has not received yet (stop.sh drops it). A backup cut off (a
# busy shared server) is tried again.
for attempt in 1 2 3; do
  say "pg_basebackup of $PRIMARY_HOST:$PRIMARY_PORT into $REPLICA_DIR"
  if as_postgres "$BIN/pg_basebackup" \
      -d "host=$PRIMARY_HOST port=$PRIMARY_PORT user=postgres application_name=$SLOT" \
      -D "$REPLICA_DIR" -X stream -C -S "$SLOT" -R -c fast; then
    break
  fi
  [ "$attempt" = 3 ] && die "pg_basebackup failed 3 times"
  rm -rf "$REPLICA_DIR"
  slot_exists && primary_sql "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
  sleep 2
done

# Debian keeps the primary's configuration in /etc, outside the data directory: the
# replica gets its own. A hot standby needs these limits at least as high as the primary's.
for setting in max_connections max_worker_processes max_wal_senders max_prepared_transactions max_locks_per_transaction; do
  echo "$setting = $(primary_sql "SHOW $setting")"
done > "$REPLICA_DIR/limits.conf"
cat > "$REPLICA_DIR/postgresql.conf" <<EOF
# Written by deploy/pg-replica/setup.sh: a hot standby of $PRIMARY_HOST:$PRIMARY_PORT.
listen_addresses = '127.0.0.1'
port = $REPLICA_PORT
unix_socket_directories = '/var/run/postgresql'
hot_standby = on
# Tell the primary which rows the replica's queries still read, so vacuum on the primary
# does not cancel them.
hot_standby_feedback = on
shared_buffers = 64MB
timezone = 'Etc/UTC'
log_timezone = 'Etc/UTC'
datestyle = 'iso, mdy'
cluster_name = 'replica-$REPLICA_PORT'
include = 'limits.conf'
EOF
cat > "$REPLICA_DIR/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
: > "$REPLICA_DIR/pg_ident.conf"
chown postgres:postgres "$REPLICA_DIR"/*.conf
as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/replica.log" -w -t 300 start >/dev/null \
  || not_started
wait_streaming 120 || { tail -20 "$REPLICA_DIR/replica.log" >&2; die "the replica does not stream"; }
say "streaming on 127.0.0.1:$REPLICA_PORT"
