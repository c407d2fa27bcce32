#!/usr/bin/env bash
# Run a command, and again whenever it dies, as systemd's Restart=always does: for honcho
# (`make prod`), which would otherwise stop every process when one exits. A Celery worker
# holding a task when Redis goes away exits with kombu's "Unrecoverable error"; once it is
# started again it waits for Redis and consumes. SIGTERM or SIGINT stops it for good.
set -u
stopping=0
child=""
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  "$@" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done  # a trap cut the wait short
  [ "$stopping" = 1 ] && exit "$rc"
  echo "keep-running: $1 exited with status $rc; starting it again in 2 s" >&2
  sleep 2
done
