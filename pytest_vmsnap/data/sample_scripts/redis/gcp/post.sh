#!/bin/sh
# Redis post.sh for Compute Engine guest-flush snapshots (correct): lift the write pause that
# pre.sh set (CLIENT UNPAUSE). Safe to run when pre.sh failed or never paused (nothing
# recorded: nothing to lift). Exits 1 when the pause's own timeout (the watchdog) had already
# lifted it before this script ran: writes may then have landed before the snapshot was
# taken (the agent reports UNHANDLED_SCRIPT_ERROR, and the harness treats the snapshot as not
# created). Settings are variables, never $1 (the agent passes the disk list).
set -eu
SOCK=/run/redis/redis-server.sock
STATE=/run/vmsnap-redis-quiesce

if [ ! -f "$STATE/deadline" ]; then
  echo "post: no pause recorded (pre.sh did not pause writes); nothing to lift"
  exit 0
fi
deadline=$(cat "$STATE/deadline")
now=$(date +%s)
reply=$(redis-cli -s "$SOCK" CLIENT UNPAUSE 2>&1)
rm -rf "$STATE"
if [ "$reply" != OK ]; then
  echo "post: CLIENT UNPAUSE failed: $reply" >&2
  exit 1
fi
if [ "$now" -ge "$deadline" ]; then
  echo "post: the pause had timed out (watchdog) before post.sh ran;" \
       "the snapshot may not have been covered by it" >&2
  exit 1
fi
echo "post: writes resumed"
