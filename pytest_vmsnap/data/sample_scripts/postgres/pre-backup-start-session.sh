#!/bin/sh
# BROKEN on purpose (teaching example): pg_backup_start() (non-exclusive, the only backup mode
# of PostgreSQL 15) belongs to the session that called it. This psql exits right after the
# call, and the server aborts the backup as the session ends ("aborting backup due to backend
# exiting before pg_backup_stop was called"). The script exits 0, nothing is in backup mode
# during the snapshot, and post-backup-stop.sh then fails with
#   ERROR:  backup is not in progress
# and the backup label it should have produced never exists.
# Fix: see pre.sh (CHECKPOINT, hold nothing), or keep one session open from the pre-script
# through the snapshot to the post-script (a background psql fed through a FIFO).
set -eu
runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT pg_backup_start('azure-vm-backup', true);"
echo "pre: backup started (or so it seems)"
