#!/bin/sh
# Redis pre.sh for Compute Engine guest-flush snapshots (correct; Redis 7 and newer): stop
# writes, take a fresh RDB and wait until it is on disk, then flush the data's file system.
#
# 1. CLIENT PAUSE <ms> WRITE: from now on no write lands (clients' writes wait; reads go on).
#    The pause is held by the server, not by a client session, so nothing has to stay running
#    after this script exits. It is its own watchdog: the server lifts it after PAUSE_MS even
#    if post.sh never runs. It must outlast pre + snapshot; post.sh lifts it as soon as it can.
# 2. BGSAVE SCHEDULE and wait until rdb_bgsave_in_progress:0 with more completed saves than
#    before (INFO rdb_saves) and rdb_last_bgsave_status:ok. BGSAVE is asynchronous: returning
#    right after it leaves the snapshot with the previous dump and a half-written temporary
#    file (see pre-bgsave-nowait.sh).
# 3. sync -f on the data's file system (see the end).
# The deadline of the pause goes to a file in /run, so that post.sh can tell whether the
# watchdog lifted it before the snapshot was over.
#
# The guest agent executes /etc/google/snapshots/pre.sh directly (this '#!' line decides the
# shell) as root with one argument, the disk list ("0/1"), which this script ignores: its
# settings are the variables below, never $1/$2. It exits 1 (message on stderr, writes
# resumed) when Redis does not answer or the save fails; never 124 (the agent's timeout code).
set -eu
SOCK=/run/redis/redis-server.sock
DATA=/var/lib/redis
PAUSE_MS=300000                   # watchdog: the server resumes writes after 300 s by itself
SAVE_WAIT=30                      # seconds for BGSAVE, well inside the agent's 60 s timeout
STATE=/run/vmsnap-redis-quiesce   # tmpfs: never on the disks being snapshotted

cli() { redis-cli -s "$SOCK" "$@"; }
persistence() { cli INFO persistence | tr -d '\r'; }
fail() {
  cli CLIENT UNPAUSE >/dev/null 2>&1 || true
  rm -rf "$STATE"
  echo "pre: $*; writes resumed" >&2
  exit 1
}

if [ "$(cli PING 2>&1)" != PONG ]; then
  echo "pre: Redis does not answer PING on $SOCK" >&2
  exit 1
fi
before=$(persistence | sed -n 's/^rdb_saves://p')
case "$before" in
  ''|*[!0-9]*) echo "pre: no rdb_saves in INFO persistence (Redis 7 or newer needed)" >&2; exit 1 ;;
esac

rm -rf "$STATE"
mkdir -p "$STATE"
# Written before the pause starts: the recorded deadline is never later than the real one.
echo $(( $(date +%s) + PAUSE_MS / 1000 )) > "$STATE/deadline"
reply=$(cli CLIENT PAUSE "$PAUSE_MS" WRITE 2>&1)
[ "$reply" = OK ] || fail "CLIENT PAUSE failed: $reply"
reply=$(cli BGSAVE SCHEDULE 2>&1)
case "$reply" in
  "Background saving started"|"Background saving scheduled") ;;
  *) fail "BGSAVE failed: $reply" ;;
esac

i=0
limit=$((SAVE_WAIT * 50))
while :; do
  info=$(persistence)
  saves=$(echo "$info" | sed -n 's/^rdb_saves://p')
  if echo "$info" | grep -qx 'rdb_bgsave_in_progress:0' && [ "$saves" -gt "$before" ]; then
    break
  fi
  i=$((i + 1))
  [ "$i" -gt "$limit" ] && fail "BGSAVE did not finish in $SAVE_WAIT s"
  sleep 0.02
done
status=$(persistence | sed -n 's/^rdb_last_bgsave_status://p')
[ "$status" = ok ] || fail "BGSAVE failed (rdb_last_bgsave_status:$status)"

# GCP does not freeze the file systems: what Redis wrote may still be in this VM's page cache
# (the rename of dump.rdb, the AOF manifest), and the disk snapshot copies only what reached
# the disk. With writes paused, push it there. Only the file system that holds the data (-f):
# a plain sync flushes every file system of the machine, which can outlast the timeout.
sync -f "$DATA"
echo "pre: writes paused (watchdog: $PAUSE_MS ms), RDB saved (save $saves since start), $DATA synced"
