#!/bin/sh
# PostgreSQL pre-script (correct; PostgreSQL 15 and newer).
#
# Is a quiesce needed at all? Not for correctness, when the snapshot covers the data directory,
# pg_wal and every tablespace at the same instant (one atomic snapshot of all the disks):
# the restored server then runs its normal crash recovery (WAL replay). What helps is a
# CHECKPOINT just before the snapshot: the replay after a restore gets short. Nothing is held
# across the snapshot, so there is nothing for the post-script to release.
#
# PostgreSQL 15 has no exclusive backup mode (pg_start_backup is gone), and pg_backup_start
# only lasts as long as the session that called it: do not use it from a script that exits.
#
# The script fails loudly (non-zero exit, message on stderr) when the server does not answer
# or the CHECKPOINT fails: psql runs with ON_ERROR_STOP=1, so an SQL error is an exit code.
# Runs as root under sh (dash): the framework ignores the shebang.
set -eu

PGSOCK=${PGSOCK:-/var/run/postgresql}
PGPORT=${PGPORT:-5432}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -d postgres "$@"
}

if ! answer=$(pg -c 'SELECT 1' 2>&1) || [ "$answer" != 1 ]; then
  echo "pre: PostgreSQL does not answer on $PGSOCK port $PGPORT: $answer" >&2
  exit 1
fi
if [ "$(pg -c 'SELECT pg_is_in_recovery()')" = t ]; then
  echo "pre: this server is a standby (in recovery): CHECKPOINT would only be a restartpoint" >&2
fi
pg -c 'CHECKPOINT'
echo "pre: CHECKPOINT done at $(pg -c 'SELECT pg_current_wal_lsn()'); nothing is held"
