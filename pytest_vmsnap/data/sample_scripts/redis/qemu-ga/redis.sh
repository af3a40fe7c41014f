#!/bin/sh
# qemu-ga fsfreeze-hook.d script for Redis (correct; Redis 7 and newer).
# Install as /etc/qemu/fsfreeze-hook.d/redis.sh, mode 0755 (see README.md).
# freeze: CLIENT PAUSE <ms> WRITE, then BGSAVE SCHEDULE and wait until the new dump is on
# disk (rdb_bgsave_in_progress:0, one more save in rdb_saves, rdb_last_bgsave_status:ok); on
# any failure lift the pause again and exit 1. The pause is held by the server, not by a
# client session, so nothing stays running after this script; its timeout (PAUSE_MS) is the
# watchdog: libvirt sends no thaw after a failed freeze, and the server lifts it by itself.
# qemu-ga's FIFREEZE, right after this script, flushes what Redis wrote.
# thaw: CLIENT UNPAUSE; exit 1 if the watchdog had lifted the pause first.
# Failures go to stderr with exit 1: the stock wrapper only logs them to
# /var/log/qga-fsfreeze-hook.log (see README.md); run this as the hook itself to make a
# failed freeze fail the snapshot.
set -eu
SOCK=${REDIS_SOCKET:-/run/redis/redis-server.sock}
PAUSE_MS=${PAUSE_MS:-300000}
SAVE_WAIT=${SAVE_WAIT:-60}
STATE=/run/vmsnap-redis-qga   # tmpfs: never on the disks being frozen

cli() { redis-cli -s "$SOCK" "$@"; }
persistence() { cli INFO persistence | tr -d '\r'; }
fail() {
  cli CLIENT UNPAUSE >/dev/null 2>&1 || true
  rm -rf "$STATE"
  echo "redis freeze: $*; writes resumed" >&2
  exit 1
}

freeze() {
  if [ "$(cli PING 2>&1)" != PONG ]; then
    echo "redis freeze: Redis does not answer PING on $SOCK" >&2
    exit 1
  fi
  before=$(persistence | sed -n 's/^rdb_saves://p')
  case "$before" in
    ''|*[!0-9]*) echo "redis freeze: no rdb_saves in INFO persistence (Redis 7 needed)" >&2; exit 1 ;;
  esac
  rm -rf "$STATE"
  mkdir -p "$STATE"
  # The deadline, written before the pause starts: never later than the real one.
  echo $(( $(date +%s) + PAUSE_MS / 1000 )) > "$STATE/deadline"
  reply=$(cli CLIENT PAUSE "$PAUSE_MS" WRITE 2>&1)
  [ "$reply" = OK ] || fail "CLIENT PAUSE failed: $reply"
  reply=$(cli BGSAVE SCHEDULE 2>&1)
  case "$reply" in
    "Background saving started"|"Background saving scheduled") ;;
    *) fail "BGSAVE failed: $reply" ;;
  esac
  i=0
  while :; do
    info=$(persistence)
    saves=$(echo "$info" | sed -n 's/^rdb_saves://p')
    if echo "$info" | grep -qx 'rdb_bgsave_in_progress:0' && [ "$saves" -gt "$before" ]; then
      break
    fi
    i=$((i + 1))
    [ "$i" -gt $((SAVE_WAIT * 50)) ] && fail "BGSAVE did not finish in $SAVE_WAIT s"
    sleep 0.02
  done
  status=$(persistence | sed -n 's/^rdb_last_bgsave_status://p')
  [ "$status" = ok ] || fail "BGSAVE failed (rdb_last_bgsave_status:$status)"
  echo "redis freeze: writes paused (watchdog $PAUSE_MS ms), RDB saved"
}

thaw() {
  [ -f "$STATE/deadline" ] || { echo "redis thaw: no pause recorded; nothing to lift"; return 0; }
  deadline=$(cat "$STATE/deadline")
  now=$(date +%s)
  reply=$(cli CLIENT UNPAUSE 2>&1)
  rm -rf "$STATE"
  [ "$reply" = OK ] || { echo "redis thaw: CLIENT UNPAUSE failed: $reply" >&2; exit 1; }
  if [ "$now" -ge "$deadline" ]; then
    echo "redis thaw: the watchdog lifted the pause before thaw" >&2
    exit 1
  fi
  echo "redis thaw: writes resumed"
}

case "${1:-}" in
freeze) freeze ;;
thaw) thaw ;;
*) echo "usage: $0 freeze|thaw" >&2; exit 2 ;;
esac
