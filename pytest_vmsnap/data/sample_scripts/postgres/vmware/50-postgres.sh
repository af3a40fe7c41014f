#!/bin/sh
# PostgreSQL hook for VMware Tools (correct; PostgreSQL 15 and newer).
# freeze: CHECKPOINT (nothing is held: a snapshot of all the disks at once replays the WAL);
# thaw and freezeFail: check the server accepts writes again.
#
# vmtoolsd runs every regular file in /etc/vmware-tools/backupScripts.d as
#   bash -c '"/etc/vmware-tools/backupScripts.d/<name>" <op> ["<scriptArg>"]'
# with <op> = freeze (before the file-system freeze, in name order), then thaw (after the
# snapshot, in reverse order), or freezeFail instead of thaw when anything after this
# script's freeze failed (a later script, the freeze, the snapshot). Root, cwd /, the
# service's environment; output goes to the journal.

freeze_side() (
  set -eu

  PGSOCK=${PGSOCK:-/var/run/postgresql}
  PGPORT=${PGPORT:-5432}
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

  pg() {
    runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -d postgres "$@"
  }

  if ! answer=$(pg -c 'SELECT 1' 2>&1) || [ "$answer" != 1 ]; then
    echo "freeze: PostgreSQL does not answer on $PGSOCK port $PGPORT: $answer" >&2
    exit 1
  fi
  if [ "$(pg -c 'SELECT pg_is_in_recovery()')" = t ]; then
    echo "freeze: this server is a standby (in recovery): CHECKPOINT would only be a restartpoint" >&2
  fi
  pg -c 'CHECKPOINT'
  echo "freeze: CHECKPOINT done at $(pg -c 'SELECT pg_current_wal_lsn()'); nothing is held"
)

thaw_side() (
  set -eu

  PGSOCK=${PGSOCK:-/var/run/postgresql}
  PGPORT=${PGPORT:-5432}
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

  # A temporary table is a real write that leaves nothing behind; it fails in a read-only
  # transaction ("cannot execute CREATE TABLE in a read-only transaction").
  if ! out=$(runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" \
      -d postgres 2>&1 <<'SQL'
  SELECT CASE WHEN pg_is_in_recovery() THEN 'in recovery' ELSE 'primary' END
         || ', default_transaction_read_only=' || current_setting('default_transaction_read_only');
  CREATE TEMP TABLE vmsnap_post_check (x integer);
  INSERT INTO vmsnap_post_check VALUES (1);
SQL
  ); then
    echo "thaw: PostgreSQL does not accept writes: $out" >&2
    exit 1
  fi
  echo "thaw: PostgreSQL accepts writes ($out)"
)

case "${1:-}" in
  freeze) freeze_side ;;
  thaw | freezeFail) thaw_side ;;
  *) echo "50-postgres.sh: nothing to do for '${1:-}'" ;;
esac
