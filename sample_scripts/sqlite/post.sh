#!/bin/sh
# SQLite post-script (correct): release the write lock that pre.sh holds.
# Safe to run when pre.sh failed or never took the lock.
set -eu
STATE=/run/vmsnap-sqlite-quiesce
if [ ! -p "$STATE/release" ]; then
  echo "post: no lock holder (pre-script did not take the lock); nothing to release"
  exit 0
fi
# Opening the FIFO for writing does not block: the holder has it open for reading.
echo release > "$STATE/release"
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
