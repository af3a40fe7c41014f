#!/bin/sh
# BROKEN on purpose (teaching example): pg_start_backup() was removed in PostgreSQL 15
# together with the exclusive backup mode (it became pg_backup_start(), which is
# session-scoped). Scripts written for PostgreSQL <= 14 fail here with
#   ERROR:  function pg_start_backup(unknown, boolean) does not exist
# This one at least fails loudly (ON_ERROR_STOP=1, non-zero exit): the framework reports
# Pre-ScriptExecutionFailed and the snapshot is only file-system consistent (status 1).
# Fix: see pre.sh (a CHECKPOINT before one atomic snapshot of all the disks).
set -eu
runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT pg_start_backup('azure-vm-backup', true);"
