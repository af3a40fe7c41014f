#!/bin/sh
# SQLite pre.sh for Compute Engine guest-flush snapshots (correct).
#
# The guest agent executes /etc/google/snapshots/pre.sh directly (this '#!' line decides the
# shell) with one argument, the disk list ("0/1" or "1/2,3/4"), which this script ignores.
# It folds the WAL into the database file, then holds a write lock (BEGIN IMMEDIATE) in a
# background sqlite3 session that outlives this script until post.sh releases it; a watchdog
# releases it on its own after HOLD_MAX seconds if post.sh never runs.
#
# The holder's stdin, stdout and stderr are redirected: the agent reads the script's stdout
# and stderr until every process holding them has closed them, so a holder that kept them
# would hold the agent too (see pre-holder-keeps-output.sh).
set -eu
DB=/var/lib/app/app.db
HOLD_MAX=120
STATE=/run/vmsnap-sqlite-quiesce   # tmpfs: never on the disks being snapshotted

[ -f "$DB" ] || { echo "pre: no database at $DB" >&2; exit 1; }
rm -rf "$STATE"
mkdir -p "$STATE"
mkfifo "$STATE/release"

(
  {
    printf '.timeout 20000\nPRAGMA wal_checkpoint(TRUNCATE);\nBEGIN IMMEDIATE;\n.print LOCKED\n'
    timeout "$HOLD_MAX" sh -c 'read -r _ < "$1"' _ "$STATE/release" || true
    printf 'ROLLBACK;\n.print RELEASED\n'
  } | sqlite3 "$DB" > "$STATE/holder.out" 2>&1
) </dev/null >/dev/null 2>&1 &

# Return only once the lock is really held.
i=0
while ! grep -q LOCKED "$STATE/holder.out" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 1000 ]; then
    echo "pre: could not take the write lock on $DB:" >&2
    cat "$STATE/holder.out" >&2
    exit 1
  fi
  sleep 0.01
done
# GCP does not freeze the file systems: what the database wrote is still in this VM's page
# cache, and the disk snapshot copies only what reached the disk. With writes held, push it
# there, or the restored tables are torn. Only the file system that holds the data (-f): a
# plain sync flushes every file system of the machine, which can outlast the timeout.
sync -f "$DB"
echo "pre: WAL checkpointed, write lock held on $DB"
