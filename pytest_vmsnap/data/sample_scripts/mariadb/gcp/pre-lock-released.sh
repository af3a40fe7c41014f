#!/bin/sh
# BROKEN on purpose (teaching example): the lock is released when the client exits.
#
# One `mariadb -e` runs FLUSH TABLES WITH READ LOCK and exits; FTWRL belongs to that session,
# so it ends a few milliseconds later, before the snapshot. The guest agent sees exit code 0
# and answers NO_ERROR: it freezes nothing itself, so the snapshot is taken with the tables
# open and writable. Pair it with post.sh (which finds no holder and exits 0).
set -eu
mariadb -e "FLUSH TABLES WITH READ LOCK;"
echo "pre: tables flushed and locked"   # and unlocked again when mariadb exited
