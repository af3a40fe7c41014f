#!/bin/bash
# BROKEN on purpose (teaching example): bash-only syntax. The framework runs `sh pre.sh`
# whatever the shebang says, and sh is dash on Debian and Ubuntu, where `[[` does not exist.
DB=${1:-/var/lib/app/app.db}
if [[ -f $DB ]]; then
  sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);'
fi
