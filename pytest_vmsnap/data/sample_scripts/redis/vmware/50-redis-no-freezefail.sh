#!/bin/sh
# Redis hook for VMware Tools (BROKEN: ignores freezeFail): the pause is set on freeze and
# lifted on thaw only. When a later script, the file-system freeze or the snapshot fails,
# vmtoolsd calls 'freezeFail' instead of 'thaw', this script does nothing, and every write
# of the application hangs until the pause's own timeout (PAUSE_MS, 300 s) lifts it.
#
# vmtoolsd runs every regular file in /etc/vmware-tools/backupScripts.d as
#   bash -c '"/etc/vmware-tools/backupScripts.d/<name>" <op> ["<scriptArg>"]'
# with <op> = freeze (before the file-system freeze, in name order), then thaw (after the
# snapshot, in reverse order), or freezeFail instead of thaw when anything after this
# script's freeze failed (a later script, the freeze, the snapshot). Root, cwd /, the
# service's environment; output goes to the journal.

freeze_side() (
  set -eu
  SOCK=/run/redis/redis-server.sock
  PAUSE_MS=300000                   # watchdog: the server resumes writes after 300 s by itself
  SAVE_WAIT=60                      # seconds for BGSAVE (vmtoolsd's abort timer is 900 s)
  STATE=/run/vmsnap-redis-quiesce   # tmpfs: never on the disks being frozen

  cli() { redis-cli -s "$SOCK" "$@"; }
  persistence() { cli INFO persistence | tr -d '\r'; }
  fail() {
    cli CLIENT UNPAUSE >/dev/null 2>&1 || true
    rm -rf "$STATE"
    echo "freeze: $*; writes resumed" >&2
    exit 1
  }

  if [ "$(cli PING 2>&1)" != PONG ]; then
    echo "freeze: Redis does not answer PING on $SOCK" >&2
    exit 1
  fi
  before=$(persistence | sed -n 's/^rdb_saves://p')
  case "$before" in
    ''|*[!0-9]*) echo "freeze: no rdb_saves in INFO persistence (Redis 7 or newer needed)" >&2; exit 1 ;;
  esac

  rm -rf "$STATE"
  mkdir -p "$STATE"
  # The pause's deadline, written before it starts (never later than the real one): thaw
  # tells from it whether the watchdog lifted the pause before the snapshot was over.
  echo $(( $(date +%s) + PAUSE_MS / 1000 )) > "$STATE/deadline"
  reply=$(cli CLIENT PAUSE "$PAUSE_MS" WRITE 2>&1)
  [ "$reply" = OK ] || fail "CLIENT PAUSE failed: $reply"
  # BGSAVE is asynchronous: wait for the forked child, or the snapshot holds the previous
  # dump.rdb and a half-written temporary file.
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
  echo "freeze: writes paused (watchdog: $PAUSE_MS ms), RDB saved (save $saves since start)"
)

thaw_side() (
  set -eu
  SOCK=/run/redis/redis-server.sock
  STATE=/run/vmsnap-redis-quiesce
  op=$1
  if [ ! -f "$STATE/deadline" ]; then
    echo "$op: no pause recorded (freeze did not pause writes); nothing to lift"
    exit 0
  fi
  deadline=$(cat "$STATE/deadline")
  now=$(date +%s)
  reply=$(redis-cli -s "$SOCK" CLIENT UNPAUSE 2>&1)
  rm -rf "$STATE"
  if [ "$reply" != OK ]; then
    echo "$op: CLIENT UNPAUSE failed: $reply" >&2
    exit 1
  fi
  if [ "$now" -ge "$deadline" ]; then
    echo "$op: the pause had timed out (watchdog) before $op ran;" \
         "the snapshot may not have been covered by it" >&2
    exit 1
  fi
  echo "$op: writes resumed"
)

case "${1:-}" in
  freeze) freeze_side ;;
  thaw) thaw_side "$1" ;;
  *) echo "50-redis-no-freezefail.sh: nothing to do for '${1:-}'" ;;
esac
