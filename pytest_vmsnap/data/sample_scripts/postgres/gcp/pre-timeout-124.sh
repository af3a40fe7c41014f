#!/bin/sh
# BROKEN on purpose (teaching example): the exit-124 trap.
#
# Before the CHECKPOINT it waits up to 3 s for the WAL archiver to have archived the current
# segment, under coreutils `timeout`. The stand-in has no archiving (archive_mode off), so the
# wait never succeeds and `timeout` exits 124, which `set -e` makes the script's exit code.
# The guest agent maps exactly 124 to SCRIPT_TIMED_OUT, its own timeout code: after 3 s,
# with its 60 s timeout far away, it reports a timeout and no snapshot is created. The fix:
# catch the failure and exit 1 with a message (`... || { echo "..." >&2; exit 1; }`), and
# never make 124 the script's exit code. `vmsnap lint` flags it as gcp-timeout-command.
set -eu
pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"
}
timeout 3 sh -c '
  until [ "$(runuser -u postgres -- psql -X -q -At -d postgres -c "SELECT coalesce(last_archived_wal = pg_walfile_name(pg_current_wal_lsn()), false) FROM pg_stat_archiver")" = t ]; do
    sleep 0.2
  done'
pg -c 'CHECKPOINT'
echo "pre: WAL archived and CHECKPOINT done"
