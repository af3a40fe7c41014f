#!/bin/sh
# BROKEN on purpose (teaching example), the partner of pre-backup-start-session.sh: calls
# pg_backup_stop() in a new session. The backup started by the pre-script ended with that
# script's session, so this fails with "ERROR:  backup is not in progress" (non-zero exit:
# Post-ScriptExecutionFailed).
set -eu
runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT * FROM pg_backup_stop();"
