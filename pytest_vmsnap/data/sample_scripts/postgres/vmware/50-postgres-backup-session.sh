#!/bin/sh
# PostgreSQL hook for VMware Tools (BROKEN: the backup dies with the client).
# freeze calls pg_backup_start() in a psql that exits: PostgreSQL aborts a non-exclusive
# backup when its session ends. thaw calls pg_backup_stop() in a new session, which fails
# ("backup is not in progress"): vmtoolsd reports VMBACKUP_SCRIPT_ERROR after the snapshot.
set -eu
pg() { runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres "$@"; }
case "${1:-}" in
  freeze)
    pg -c "SELECT pg_backup_start('vmware-quiesce', true);"
    echo "freeze: backup started (or so it seems)"
    ;;
  thaw) pg -c "SELECT * FROM pg_backup_stop();" ;;
  freezeFail) echo "freezeFail: nothing to undo" ;;
esac
