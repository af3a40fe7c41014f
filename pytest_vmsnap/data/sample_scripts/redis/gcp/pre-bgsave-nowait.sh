#!/bin/sh
# BROKEN on purpose (teaching example): BGSAVE and exit 0 at once.
#
# The shape of NetApp Verda `Redis/redis-hook.sh`, installed as GCP's pre.sh: BGSAVE only
# starts a forked child that writes temp-<pid>.rdb and renames it over dump.rdb when done; the
# script returns before that, without waiting for rdb_bgsave_in_progress:0, and nothing stops
# writes. The agent only sees exit code 0 and answers NO_ERROR; it freezes nothing, so the
# snapshot holds the previous dump.rdb (valid but stale) plus maybe a half-written temp file,
# and writes land during the snapshot. Here appendonly + appendfsync always still gives a
# crash-consistent AOF; a store persisted by RDB only would lose everything since the last
# completed save. A failed BGSAVE is not noticed either (exit 0 whatever happens).
# Pair: post.sh (it finds no pause recorded and exits 0).
redis-cli -s /run/redis/redis-server.sock BGSAVE
exit 0
