#!/bin/sh
# Redis pre-script (correct): stop writes, then take a fresh RDB and wait until it is on disk.
#
# 1. CLIENT PAUSE <ms> WRITE: from now on no write lands (clients' writes wait; reads go on).
#    The pause is its own watchdog: the server lifts it after PAUSE_MS even if post.sh never
#    runs. It must outlast pre + freeze + snapshot; post.sh lifts it as soon as it can.
# 2. BGSAVE SCHEDULE (runs now, or right after an AOF rewrite in progress) and wait until
#    rdb_bgsave_in_progress:0 with more completed saves than before (INFO rdb_saves; LASTSAVE
#    has one-second resolution, so comparing it costs up to a second) and
#    rdb_last_bgsave_status:ok. BGSAVE is asynchronous: returning right after it (the Verda
#    bug) leaves the snapshot with the previous dump and a half-written temp file.
# With appendonly yes + appendfsync always the AOF is already durable; the fresh RDB makes the
# snapshot restorable from dump.rdb too, and the pause makes AOF and RDB agree.
#
# Usage: pre.sh [PAUSE_MS] [SAVE_WAIT_SECONDS]
# Runs under sh (dash) as root (the framework ignores the shebang); uses the unix socket.
set -eu
PAUSE_MS=${1:-300000}
SAVE_WAIT=${2:-60}
SOCK=${REDIS_SOCKET:-/run/redis/redis-server.sock}
cli() { redis-cli -s "$SOCK" "$@"; }
field() { cli INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }

if [ "$(cli PING 2>&1)" != PONG ]; then
  echo "pre: Redis does not answer PING on $SOCK" >&2
  exit 1
fi
before=$(field rdb_saves)
case "$before" in
  ''|*[!0-9]*) echo "pre: no rdb_saves in INFO persistence (Redis 7 or newer needed)" >&2; exit 1 ;;
esac

reply=$(cli CLIENT PAUSE "$PAUSE_MS" WRITE)
[ "$reply" = OK ] || { echo "pre: CLIENT PAUSE failed: $reply" >&2; exit 1; }
reply=$(cli BGSAVE SCHEDULE)
case "$reply" in
  "Background saving started"|"Background saving scheduled") ;;
  *) cli CLIENT UNPAUSE >/dev/null; echo "pre: BGSAVE failed: $reply" >&2; exit 1 ;;
esac

i=0
limit=$((SAVE_WAIT * 50))
while :; do
  persistence=$(cli INFO persistence | tr -d '\r')
  saves=$(echo "$persistence" | sed -n 's/^rdb_saves://p')
  if echo "$persistence" | grep -qx 'rdb_bgsave_in_progress:0' && [ "$saves" -gt "$before" ]; then
    break
  fi
  i=$((i + 1))
  if [ "$i" -gt "$limit" ]; then
    cli CLIENT UNPAUSE >/dev/null
    echo "pre: BGSAVE did not finish in $SAVE_WAIT s; writes resumed" >&2
    exit 1
  fi
  sleep 0.02
done
status=$(field rdb_last_bgsave_status)
if [ "$status" != ok ]; then
  cli CLIENT UNPAUSE >/dev/null
  echo "pre: BGSAVE failed (rdb_last_bgsave_status:$status); writes resumed" >&2
  exit 1
fi
echo "pre: writes paused (watchdog: $PAUSE_MS ms), RDB saved (save $saves since start)"
