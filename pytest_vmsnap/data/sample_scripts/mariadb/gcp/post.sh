#!/bin/sh
# MariaDB / MySQL post.sh for Compute Engine guest-flush snapshots (correct): release the FLUSH TABLES WITH READ LOCK that pre.sh
# holds in its background session. Safe to run when pre.sh failed or never took the lock.
# Exits 1 when the watchdog had already released the lock before this script ran: the
# snapshot may then have been taken without it (the agent reports UNHANDLED_SCRIPT_ERROR).
set -eu
STATE=/run/vmsnap-mariadb-quiesce
if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi

if [ ! -p "$STATE/release" ]; then
  echo "post: no lock holder (the pre-script did not take the lock); nothing to release"
  exit 0
fi
holder=$(sed -n 's/^HOLDER //p' "$STATE/holder.out" 2>/dev/null || true)
if grep -qx WATCHDOG "$STATE/holder.out" 2>/dev/null; then
  echo "post: the watchdog released the lock before the post-script ran;" \
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
    echo "post: the holder did not confirm UNLOCK TABLES; ending session ${holder:-?}" >&2
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
echo "post: FLUSH TABLES WITH READ LOCK released"
