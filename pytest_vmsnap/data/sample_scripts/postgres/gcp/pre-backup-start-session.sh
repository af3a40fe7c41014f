#!/bin/sh
# BROKEN on purpose (teaching example): pg_backup_start() belongs to the session that called
# it. This psql exits right after the call and the server aborts the backup with the session,
# so nothing is in backup mode during the snapshot. The agent sees exit 0 (NO_ERROR).
# Its partner post-backup-stop.sh then fails ("backup is not in progress"): the agent answers
# UNHANDLED_SCRIPT_ERROR for POST_SNAPSHOT, and the harness treats the snapshot as not created.
# Fix: pre.sh (CHECKPOINT, hold nothing).
set -eu
runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT pg_backup_start('gce-guest-flush', true);"
echo "pre: backup started (or so it seems)"
