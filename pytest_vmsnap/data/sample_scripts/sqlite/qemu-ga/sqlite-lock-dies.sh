#!/bin/sh
# BROKEN on purpose (teaching example): the lock dies with the client.
# BEGIN IMMEDIATE in a sqlite3 that exits at once: the connection closes, SQLite releases the
# lock, and nothing is held during the freeze and the snapshot.
DB=${DB:-/var/lib/app/app.db}
case "${1:-}" in
freeze) sqlite3 -cmd '.timeout 10000' "$DB" 'PRAGMA wal_checkpoint(TRUNCATE); BEGIN IMMEDIATE;' ;;
thaw) : ;;
esac
