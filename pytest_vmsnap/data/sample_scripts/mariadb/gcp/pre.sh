#!/bin/sh
# MariaDB / MySQL pre.sh for Compute Engine guest-flush snapshots (correct): hold FLUSH TABLES
# WITH READ LOCK through the snapshot.
#
# FTWRL belongs to the session that took it and ends with that session. So the lock is taken
# by a background `mariadb` client fed through a pipe: it executes each statement as it
# arrives and stays connected after this script exits, until post.sh writes to the release
# FIFO. A watchdog (timeout) releases the lock on its own after HOLD_MAX seconds if post.sh
# never runs. This script exits 0 only once FTWRL has returned (tables flushed and closed,
# MyISAM included) and the holding session is visible in the process list; it exits 1 if
# the lock cannot be taken within LOCK_WAIT seconds (FTWRL waits for running statements).
#
# The guest agent executes /etc/google/snapshots/pre.sh directly (this "#!" line decides the
# shell) as root with one argument, the disk list ("0/1"), which this script ignores: its
# settings are the variables below, never $1/$2. The holder is started with its streams
# redirected, or the agent would wait for it (it reads stdout and stderr to end-of-file).
set -eu
HOLD_MAX=300
LOCK_WAIT=30
STATE=/run/vmsnap-mariadb-quiesce   # tmpfs: never on the disks being snapshotted
if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi

fail() {
  echo "pre: $*" >&2
  [ -f "$STATE/holder.out" ] && sed 's/^/pre:   holder: /' "$STATE/holder.out" >&2
  # Let the holder's reader go (it may wait on the FIFO), then forget the state.
  [ -p "$STATE/release" ] && timeout 2 sh -c 'echo fail > "$1"' _ "$STATE/release" || true
  rm -rf "$STATE"
  exit 1
}

if ! $CLIENT -N -B -e 'SELECT 1' >/dev/null 2>&1; then
  echo "pre: cannot reach MariaDB as root over its unix socket" >&2
  exit 1
fi
if [ -p "$STATE/release" ]; then
  echo "pre: a holder from an earlier run is still there; releasing it first" >&2
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
# GCP does not freeze the file systems: what the database wrote is still in this VM's page
# cache, and the disk snapshot copies only what reached the disk. With writes held, push it
# there, or the restored tables are torn. Only the file system that holds the data (-f): a
# plain sync flushes every file system of the machine, which can outlast the timeout.
sync -f /var/lib/mysql
echo "pre: FLUSH TABLES WITH READ LOCK held by session $holder (watchdog: ${HOLD_MAX} s)"
