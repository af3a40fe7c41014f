#!/bin/sh
# BROKEN on purpose (teaching example): takes the write lock in a client that exits at once.
# SQLite releases the lock when the connection closes, so nothing is held during the snapshot,
# the same mistake as FLUSH TABLES WITH READ LOCK in a `mysql -e` that returns.
set -eu
DB=${1:-/var/lib/app/app.db}
sqlite3 -cmd '.timeout 10000' "$DB" 'PRAGMA wal_checkpoint(TRUNCATE); BEGIN IMMEDIATE;'
echo "pre: lock taken (and released again when sqlite3 exited)"
