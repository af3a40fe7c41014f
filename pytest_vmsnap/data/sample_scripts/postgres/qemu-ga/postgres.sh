#!/bin/sh
# qemu-ga fsfreeze-hook.d script for PostgreSQL 15+ (correct).
# Install as /etc/qemu/fsfreeze-hook.d/postgres.sh, mode 0755: the stock wrapper
# /etc/qemu/fsfreeze-hook runs it with "freeze" before the file systems are frozen and with
# "thaw" after they are thawed (qemu-ga needs "[general] fsfreeze-hook=/etc/qemu/fsfreeze-hook"
# in /etc/qemu/qemu-ga.conf to call the wrapper at all).
#
# freeze: CHECKPOINT, so the WAL replay after a restore is short; nothing is held (a snapshot
# of all the disks at one instant is crash-consistent, and PostgreSQL recovers from it).
# thaw: check that the server accepts writes again.
# Failures exit non-zero with a message on stderr; the wrapper logs both to
# /var/log/qga-fsfreeze-hook.log (and still reports success to qemu-ga: read that log).
set -eu
PGSOCK=${PGSOCK:-/var/run/postgresql}
PGPORT=${PGPORT:-5432}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -d postgres "$@"
}

case "${1:-}" in
freeze)
  if ! answer=$(pg -c 'SELECT 1' 2>&1) || [ "$answer" != 1 ]; then
    echo "postgres freeze: no answer on $PGSOCK port $PGPORT: $answer" >&2
    exit 1
  fi
  pg -c 'CHECKPOINT'
  echo "postgres freeze: CHECKPOINT done; nothing is held"
  ;;
thaw)
  if ! out=$(pg -c 'CREATE TEMP TABLE vmsnap_thaw_check (x integer); INSERT INTO vmsnap_thaw_check VALUES (1);' 2>&1); then
    echo "postgres thaw: the server does not accept writes: $out" >&2
    exit 1
  fi
  echo "postgres thaw: the server accepts writes"
  ;;
*)
  echo "usage: $0 freeze|thaw" >&2
  exit 2
  ;;
esac
