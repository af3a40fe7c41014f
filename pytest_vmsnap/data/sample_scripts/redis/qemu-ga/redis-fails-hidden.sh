#!/bin/sh
# BROKEN on purpose (teaching example): fails on freeze, and the stock wrapper hides it.
# It talks to Redis on a socket path copied from another setup (/run/redis/redis.sock; this
# server listens on /run/redis/redis-server.sock), so PING fails and the script exits 1
# before it pauses anything. The wrapper logs "finished with status=1" in
# /var/log/qga-fsfreeze-hook.log and exits 0: qemu-ga freezes, the host takes the snapshot
# and calls it quiesced, with writes never paused and no fresh dump.
set -eu
SOCK=/run/redis/redis.sock
case "${1:-}" in
freeze)
  [ "$(redis-cli -s "$SOCK" PING 2>&1)" = PONG ] || { echo "Redis does not answer on $SOCK" >&2; exit 1; }
  redis-cli -s "$SOCK" CLIENT PAUSE 300000 WRITE
  ;;
thaw) redis-cli -s "$SOCK" CLIENT UNPAUSE || true ;;
esac
