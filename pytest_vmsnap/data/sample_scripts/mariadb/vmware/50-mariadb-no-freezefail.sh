#!/bin/sh
# MariaDB / MySQL hook for VMware Tools (BROKEN: ignores freezeFail). The lock is taken on
# freeze and released on thaw only: when a later script, the freeze or the snapshot fails,
# vmtoolsd calls 'freezeFail', this script does nothing, and the server stays locked until
# the watchdog (HOLD_MAX, 300 s) gives up.
#
# vmtoolsd runs every regular file in /etc/vmware-tools/backupScripts.d as
#   bash -c '"/etc/vmware-tools/backupScripts.d/<name>" <op> ["<scriptArg>"]'
# with <op> = freeze (before the file-system freeze, in name order), then thaw (after the
# snapshot, in reverse order), or freezeFail instead of thaw when anything after this
# script's freeze failed (a later script, the freeze, the snapshot). Root, cwd /, the
# service's environment; output goes to the journal.

freeze_side() (
  set -eu
  HOLD_MAX=${1:-300}
  LOCK_WAIT=${2:-30}
  STATE=/run/vmsnap-mariadb-quiesce   # tmpfs: never on the disks being frozen
  if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi

  fail() {
    echo "freeze: $*" >&2
    [ -f "$STATE/holder.out" ] && sed 's/^/freeze:   holder: /' "$STATE/holder.out" >&2
    # Let the holder's reader go (it may wait on the FIFO), then forget the state.
    [ -p "$STATE/release" ] && timeout 2 sh -c 'echo fail > "$1"' _ "$STATE/release" || true
    rm -rf "$STATE"
    exit 1
  }

  if ! $CLIENT -N -B -e 'SELECT 1' >/dev/null 2>&1; then
    echo "freeze: cannot reach MariaDB as root over its unix socket" >&2
    exit 1
  fi
  if [ -p "$STATE/release" ]; then
    echo "freeze: a holder from an earlier run is still there; releasing it first" >&2
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
      if timeout "$HOLD_MAX" sh -c 'read -r _ < "$1"' _ "$STATE/release"; then
        :
      else
        echo "SELECT 'WATCHDOG';"
      fi
      echo "UNLOCK TABLES;"
      echo "SELECT 'RELEASED';"
    } | $CLIENT -N -B --unbuffered > "$STATE/holder.out" 2>&1
  ) </dev/null >/dev/null 2>&1 &

  # Return only once the lock is really held.
  i=0
  limit=$(( (LOCK_WAIT + 5) * 100 ))
  while ! grep -qx LOCKED "$STATE/holder.out" 2>/dev/null; do
    grep -q '^ERROR' "$STATE/holder.out" 2>/dev/null && fail "FLUSH TABLES WITH READ LOCK failed"
    i=$((i + 1))
    [ "$i" -gt "$limit" ] && fail "FLUSH TABLES WITH READ LOCK not granted in $((LOCK_WAIT + 5)) s"
    sleep 0.01
  done
  holder=$(sed -n 's/^HOLDER //p' "$STATE/holder.out")
  seen=$($CLIENT -N -B -e "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ${holder:-0}")
  [ "$seen" = "$holder" ] || fail "the holding session ${holder:-?} is not in the process list"
  echo "freeze: FLUSH TABLES WITH READ LOCK held by session $holder (watchdog: ${HOLD_MAX} s)"
)

thaw_side() (
  set -eu
  STATE=/run/vmsnap-mariadb-quiesce
  if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi

  if [ ! -p "$STATE/release" ]; then
    echo "thaw: no lock holder (freeze did not take the lock); nothing to release"
    exit 0
  fi
  holder=$(sed -n 's/^HOLDER //p' "$STATE/holder.out" 2>/dev/null || true)
  if grep -qx WATCHDOG "$STATE/holder.out" 2>/dev/null; then
    echo "thaw: the watchdog released the lock before thaw ran;" \
         "the snapshot may not have been covered by it" >&2
    rm -rf "$STATE"
    exit 1
  fi

  # The holder reads the FIFO; bounded in case it is gone (nobody reading: open would block).
  timeout 10 sh -c 'echo release > "$1"' _ "$STATE/release" || true
  i=0
  while ! grep -qx RELEASED "$STATE/holder.out" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 500 ]; then
      echo "thaw: the holder did not confirm UNLOCK TABLES; ending session ${holder:-?}" >&2
      [ -n "$holder" ] && $CLIENT -e "KILL $holder" 2>/dev/null || true
      break
    fi
    sleep 0.01
  done
  if [ -n "$holder" ]; then
    left=$($CLIENT -N -B -e "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = $holder")
    if [ -n "$left" ]; then
      $CLIENT -e "KILL $holder" 2>/dev/null || true
    fi
  fi
  rm -rf "$STATE"
  echo "thaw: FLUSH TABLES WITH READ LOCK released"
)

case "${1:-}" in
  freeze) freeze_side ;;
  thaw) thaw_side ;;
  *) echo "50-mariadb-no-freezefail.sh: nothing to do for '${1:-}'" ;;
esac
