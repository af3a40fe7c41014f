#!/bin/sh
# PostgreSQL pre.sh for Compute Engine guest-flush snapshots (correct; PostgreSQL 15 and newer).
#
# No lock is needed when the snapshot covers the data directory, pg_wal and every tablespace
# at the same instant: the restored server runs its normal crash recovery (WAL replay). A
# CHECKPOINT just before the snapshot makes that replay short. Nothing is held, so post.sh has
# nothing to release.
#
# The guest agent executes /etc/google/snapshots/pre.sh directly (this '#!' line decides the
# shell) as root, with one argument, the disk list ("0/1"), which this script ignores. It
# fails loudly (exit 1, message on stderr) when the server does not answer or the CHECKPOINT
# fails: psql runs with ON_ERROR_STOP=1. Never exit 124: the agent reports that as its own
# timeout.
set -eu

PGSOCK=/var/run/postgresql
PGPORT=5432
export PGCONNECT_TIMEOUT=10

pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -d postgres "$@"
}

if ! answer=$(pg -c 'SELECT 1' 2>&1) || [ "$answer" != 1 ]; then
  echo "pre: PostgreSQL does not answer on $PGSOCK port $PGPORT: $answer" >&2
  exit 1
fi
pg -c 'CHECKPOINT'
echo "pre: CHECKPOINT done at $(pg -c 'SELECT pg_current_wal_lsn()'); nothing is held"
