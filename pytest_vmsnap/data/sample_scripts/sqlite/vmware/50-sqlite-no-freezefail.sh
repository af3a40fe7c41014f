#!/bin/sh
# SQLite hook for VMware Tools (BROKEN: ignores freezeFail): releases on thaw only, so a
# failed quiesce leaves the application unable to write until the watchdog (120 s).
#
# vmtoolsd runs every regular file in /etc/vmware-tools/backupScripts.d as
#   bash -c '"/etc/vmware-tools/backupScripts.d/<name>" <op> ["<scriptArg>"]'
# with <op> = freeze (before the file-system freeze, in name order), then thaw (after the
# snapshot, in reverse order), or freezeFail instead of thaw when anything after this
# script's freeze failed (a later script, the freeze, the snapshot). Root, cwd /, the
# service's environment; output goes to the journal.

freeze_side() (
  set -eu
  DB=${1:-/var/lib/app/app.db}
  HOLD_MAX=${2:-120}
  STATE=/run/vmsnap-sqlite-quiesce   # never on the disks being frozen

  [ -f "$DB" ] || { echo "freeze: no database at $DB" >&2; exit 1; }
  rm -rf "$STATE"
  mkdir -p "$STATE"
  mkfifo "$STATE/release"

  # The holder: sqlite3 executes each line as it arrives, so the lock is taken at once and
  # kept until the feeder sends ROLLBACK. The watchdog (timeout) releases it on its own if
  # no thaw ever comes.
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
      echo "freeze: could not take the write lock on $DB:" >&2
      cat "$STATE/holder.out" >&2
      exit 1
    fi
    sleep 0.01
  done
  echo "freeze: WAL checkpointed, write lock held on $DB"
)

thaw_side() (
  set -eu
  STATE=/run/vmsnap-sqlite-quiesce
  if [ ! -p "$STATE/release" ]; then
    echo "thaw: no lock holder (freeze did not take the lock); nothing to release"
    exit 0
  fi
  if grep -q RELEASED "$STATE/holder.out" 2>/dev/null; then
    echo "thaw: the watchdog released the lock before thaw ran;" \
         "the snapshot may not have been covered by it" >&2
    rm -rf "$STATE"
    exit 1
  fi
  # The holder reads the FIFO until its watchdog gives up; after that an open for writing would
  # wait for a reader forever, so give up after 5 s: the lock was released early.
  if ! timeout 5 sh -c 'echo release > "$1"' _ "$STATE/release"; then
    echo "thaw: the holder is gone: its watchdog released the lock before thaw" >&2
    rm -rf "$STATE"
    exit 1
  fi
  i=0
  while ! grep -q RELEASED "$STATE/holder.out" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 500 ]; then
      echo "thaw: the holder did not confirm the release" >&2
      exit 1
    fi
    sleep 0.01
  done
  rm -rf "$STATE"
  echo "thaw: write lock released"
)

case "${1:-}" in
  freeze) freeze_side ;;
  thaw) thaw_side ;;
  *) echo "50-sqlite-no-freezefail.sh: nothing to do for '${1:-}'" ;;
esac
