#!/bin/sh
# BROKEN on purpose (teaching example): forgets CLIENT UNPAUSE.
#
# Pair it with pre.sh: the writes paused by CLIENT PAUSE ... WRITE stay paused after the
# backup until the pause's own timeout (pre.sh's PAUSE_MS, 300 s by default). The application
# hangs on every write meanwhile, and the backup reports success. The liveness probe catches it.
set -eu
echo "post: snapshot done"
