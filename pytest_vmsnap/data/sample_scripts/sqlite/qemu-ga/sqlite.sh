#!/bin/sh
# qemu-ga fsfreeze-hook.d script for SQLite (correct).
# Install as /etc/qemu/fsfreeze-hook.d/sqlite.sh, mode 0755 (see README.md).
# freeze: fold the WAL into the database file, then hold BEGIN IMMEDIATE in a background
# sqlite3 (streams to a file, never this script's) until "thaw"; watchdog HOLD_MAX seconds.
# thaw: release the lock; exit 1 if the watchdog had released it first.
set -eu
DB=${DB:-/var/lib/app/app.db}
HOLD_MAX=${HOLD_MAX:-120}
STATE=/run/vmsnap-sqlite-qga   # tmpfs: never on the disks being frozen

freeze() {
  [ -f "$DB" ] || { echo "sqlite freeze: no database at $DB" >&2; exit 1; }
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
  i=0
  while ! grep -q LOCKED "$STATE/holder.out" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 1000 ]; then
      echo "sqlite freeze: could not take the write lock on $DB" >&2
      exit 1
    fi
    sleep 0.01
  done
  echo "sqlite freeze: WAL checkpointed, write lock held"
}

thaw() {
  [ -p "$STATE/release" ] || { echo "sqlite thaw: no lock holder"; return 0; }
  if ! timeout 5 sh -c 'echo release > "$1"' _ "$STATE/release"; then
    rm -rf "$STATE"
    echo "sqlite thaw: the watchdog released the lock before thaw" >&2
    exit 1
  fi
  i=0
  while ! grep -q RELEASED "$STATE/holder.out" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 500 ] && { echo "sqlite thaw: no release confirmed" >&2; exit 1; }
    sleep 0.01
  done
  rm -rf "$STATE"
  echo "sqlite thaw: write lock released"
}

case "${1:-}" in
freeze) freeze ;;
thaw) thaw ;;
*) echo "usage: $0 freeze|thaw" >&2; exit 2 ;;
esac
