#!/bin/sh
# qemu-ga fsfreeze-hook.d script for MariaDB / MySQL (correct).
# Install as /etc/qemu/fsfreeze-hook.d/mariadb.sh, mode 0755 (see README.md).
#
# freeze: FLUSH TABLES WITH READ LOCK in a background client fed through a FIFO. FTWRL lasts as
# long as the session that took it, and this script must exit before qemu-ga freezes, so the
# session lives on in the background until "thaw" writes to the FIFO. A watchdog (timeout)
# releases the lock after HOLD_MAX seconds if "thaw" never comes (libvirt sends no thaw after a
# failed freeze). The holder's streams go to a file, never to this script's stdout/stderr: a
# background process holding them would keep QEMU >= 9.1 reading the hook's output forever.
# thaw: release the lock and check the holding session is gone; exit 1 if the watchdog had
# already released it (the snapshot may then not have been covered).
set -eu
HOLD_MAX=${HOLD_MAX:-300}
LOCK_WAIT=${LOCK_WAIT:-30}
STATE=/run/vmsnap-mariadb-qga   # tmpfs: never on the disks being frozen
if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi

fail() {
  echo "mariadb $1: $2" >&2
  [ -p "$STATE/release" ] && timeout 2 sh -c 'echo fail > "$1"' _ "$STATE/release" || true
  rm -rf "$STATE"
  exit 1
}

freeze() {
  $CLIENT -N -B -e 'SELECT 1' >/dev/null 2>&1 || fail freeze "cannot reach MariaDB as root"
  if [ -p "$STATE/release" ]; then
    timeout 5 sh -c 'echo release > "$1"' _ "$STATE/release" || true
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE"
  mkfifo "$STATE/release"
  (
    {
      echo "SET SESSION lock_wait_timeout = $LOCK_WAIT;"
      echo "SELECT CONCAT('HOLDER ', CONNECTION_ID());"
      echo "FLUSH TABLES WITH READ LOCK;"
      echo "SELECT 'LOCKED';"
      if ! timeout "$HOLD_MAX" sh -c 'read -r _ < "$1"' _ "$STATE/release"; then
        echo "SELECT 'WATCHDOG';"
      fi
      echo "UNLOCK TABLES;"
      echo "SELECT 'RELEASED';"
    } | $CLIENT -N -B --unbuffered > "$STATE/holder.out" 2>&1
  ) </dev/null >/dev/null 2>&1 &
  i=0
  while ! grep -qx LOCKED "$STATE/holder.out" 2>/dev/null; do
    grep -q '^ERROR' "$STATE/holder.out" 2>/dev/null && fail freeze "FLUSH TABLES WITH READ LOCK failed"
    i=$((i + 1))
    [ "$i" -gt $(( (LOCK_WAIT + 5) * 100 )) ] && fail freeze "lock not granted in time"
    sleep 0.01
  done
  echo "mariadb freeze: FLUSH TABLES WITH READ LOCK held (watchdog ${HOLD_MAX} s)"
}

thaw() {
  if [ ! -p "$STATE/release" ]; then
    echo "mariadb thaw: no lock holder; nothing to release"
    return 0
  fi
  if grep -qx WATCHDOG "$STATE/holder.out" 2>/dev/null; then
    rm -rf "$STATE"
    fail thaw "the watchdog released the lock before thaw"
  fi
  timeout 10 sh -c 'echo release > "$1"' _ "$STATE/release" || true
  i=0
  while ! grep -qx RELEASED "$STATE/holder.out" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 500 ] && break
    sleep 0.01
  done
  holder=$(sed -n 's/^HOLDER //p' "$STATE/holder.out")
  if [ -n "$holder" ] && [ -n "$($CLIENT -N -B -e "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = $holder")" ]; then
    $CLIENT -e "KILL $holder" 2>/dev/null || true
  fi
  rm -rf "$STATE"
  echo "mariadb thaw: lock released"
}

case "${1:-}" in
freeze) freeze ;;
thaw) thaw ;;
*) echo "usage: $0 freeze|thaw" >&2; exit 2 ;;
esac
