#!/bin/sh
# BROKEN on purpose (teaching example): fails on freeze, and the stock wrapper hides it.
# It looks for the database where it is not (/var/lib/app/data.db) and exits 1; the wrapper
# logs "finished with status=1" and exits 0, so qemu-ga freezes and the host calls the
# snapshot quiesced, with no checkpoint and no lock.
set -eu
DB=/var/lib/app/data.db
case "${1:-}" in
freeze)
  [ -f "$DB" ] || { echo "no database at $DB" >&2; exit 1; }
  sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);'
  ;;
thaw) : ;;
esac
