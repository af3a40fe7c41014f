#!/bin/sh
# BROKEN on purpose (teaching example): takes the write lock in a sqlite3 that exits at once.
# SQLite releases the lock when the connection closes, so nothing is held during the
# snapshot. The agent answers NO_ERROR: it only sees the exit code.
set -eu
sqlite3 -cmd '.timeout 10000' /var/lib/app/app.db 'PRAGMA wal_checkpoint(TRUNCATE); BEGIN IMMEDIATE;'
echo "pre: lock taken (and released again when sqlite3 exited)"
