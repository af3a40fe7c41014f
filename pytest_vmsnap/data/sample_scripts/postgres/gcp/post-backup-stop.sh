#!/bin/sh
# BROKEN on purpose (teaching example), the partner of pre-backup-start-session.sh: calls
# pg_backup_stop() in a new session, where no backup is in progress ("ERROR:  backup is not in
# progress"): exit 3 from psql, UNHANDLED_SCRIPT_ERROR for POST_SNAPSHOT.
set -eu
runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT * FROM pg_backup_stop();"
