#!/bin/sh
# SQLite pre-script (correct): fold the WAL into the database file, then hold a write lock
# (BEGIN IMMEDIATE) in a background session that outlives this script, until post.sh
# releases it. Readers keep working; writers wait on their busy timeout.
#
# Usage: pre.sh [DB] [HOLD_MAX_SECONDS]
# Runs under sh (dash): the framework ignores the shebang.
set -eu
DB=${1:-/var/lib/app/app.db}
HOLD_MAX=${2:-120}
STATE=/run/vmsnap-sqlite-quiesce   # never on the disks being frozen

[ -f "$DB" ] || { echo "pre: no database at $DB" >&2; exit 1; }
rm -rf "$STATE"
mkdir -p "$STATE"
mkfifo "$STATE/release"

# The holder: sqlite3 executes each line as it arrives, so the lock is taken at once and
# kept until the feeder sends ROLLBACK. The watchdog (timeout) releases it on its own if
# post.sh never runs.
(
  {
    printf '.timeout 20000\nPRAGMA wal_checkpoint(TRUNCATE);\nBEGIN IMMEDIATE;\n.print LOCKED\n'
    timeout "$HOLD_MAX" sh -c 'read -r _ < "$1"' _ "$STATE/release" || true
    printf 'ROLLBACK;\n.print RELEASED\n'
  } | sqlite3 "$DB" > "$STATE/holder.out" 2>&1
) </dev/null >/dev/null 2>&1 &
echo $! > "$STATE/holder.pid"

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
echo "pre: WAL checkpointed, write lock held on $DB"
