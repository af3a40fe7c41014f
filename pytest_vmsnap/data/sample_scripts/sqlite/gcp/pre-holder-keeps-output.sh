#!/bin/sh
# BROKEN on purpose (teaching example): the correct pre.sh, except that the background holder
# keeps this script's stdout and stderr (no "</dev/null >/dev/null 2>&1" after it).
#
# The guest agent reads a script's stdout and stderr to end-of-file (Go's os/exec with a
# buffer and no WaitDelay): it does not answer PRE_SNAPSHOT until the holder has ended too.
# The holder ends only at its watchdog (HOLD_MAX, here 90 s, past the default 60 s timeout),
# so the agent answers SCRIPT_TIMED_OUT after 90 s and no snapshot is created; with a watchdog
# shorter than the timeout it would answer NO_ERROR, after the lock was released.
set -eu
DB=/var/lib/app/app.db
HOLD_MAX=90
STATE=/run/vmsnap-sqlite-quiesce

rm -rf "$STATE"
mkdir -p "$STATE"
mkfifo "$STATE/release"
(
  {
    printf '.timeout 20000\nPRAGMA wal_checkpoint(TRUNCATE);\nBEGIN IMMEDIATE;\n.print LOCKED\n'
    timeout "$HOLD_MAX" sh -c 'read -r _ < "$1"' _ "$STATE/release" || true
    printf 'ROLLBACK;\n.print RELEASED\n'
  } | sqlite3 "$DB" > "$STATE/holder.out"
) &
i=0
while ! grep -q LOCKED "$STATE/holder.out" 2>/dev/null; do
  i=$((i + 1))
  [ "$i" -gt 1000 ] && { echo "pre: could not take the write lock" >&2; exit 1; }
  sleep 0.01
done
echo "pre: write lock held (but the agent keeps waiting for the holder's output)"
