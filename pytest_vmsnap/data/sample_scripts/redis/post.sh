#!/bin/sh
# Redis post-script (correct): lift the write pause that pre.sh set (CLIENT UNPAUSE).
# Safe to run when the pause already ended or pre.sh failed.
set -eu
SOCK=${REDIS_SOCKET:-/run/redis/redis-server.sock}
reply=$(redis-cli -s "$SOCK" CLIENT UNPAUSE 2>&1)
if [ "$reply" != OK ]; then
  echo "post: CLIENT UNPAUSE failed: $reply" >&2
  exit 1
fi
echo "post: writes resumed"
