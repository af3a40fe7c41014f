#!/bin/sh
# SQLite post.sh for Compute Engine guest-flush snapshots (correct): release the write lock
# that pre.sh holds. Safe to run when pre.sh failed or never took the lock. Exits 1 when the
# watchdog had released the lock before this script ran (the agent then reports
# UNHANDLED_SCRIPT_ERROR, and the harness treats the snapshot as not created).
set -eu
STATE=/run/vmsnap-sqlite-quiesce
if [ ! -p "$STATE/release" ]; then
  echo "post: no lock holder (pre.sh did not take the lock); nothing to release"
  exit 0
fi
if grep -q RELEASED "$STATE/holder.out" 2>/dev/null; then
  echo "post: the watchdog released the lock before post.sh ran" >&2
  rm -rf "$STATE"
  exit 1
fi
# The holder reads the FIFO until its watchdog gives up; bounded in case it is gone.
if ! timeout 5 sh -c 'echo release > "$1"' _ "$STATE/release"; then
  echo "post: the holder is gone: its watchdog released the lock before post.sh" >&2
  rm -rf "$STATE"
  exit 1
fi
i=0
while ! grep -q RELEASED "$STATE/holder.out" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 500 ]; then
    echo "post: the holder did not confirm the release" >&2
    exit 1
  fi
  sleep 0.01
done
rm -rf "$STATE"
echo "post: write lock released"
