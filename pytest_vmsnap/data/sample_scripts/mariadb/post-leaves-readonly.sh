#!/bin/sh
# BROKEN on purpose (teaching example): forgets SET GLOBAL read_only = OFF.
#
# Pair it with pre-ftwrl-exits.sh: the pre-script set read_only = ON, this post-script only
# runs UNLOCK TABLES (a no-op in a new session) and exits 0. The backup "succeeds" and the
# application stays read-only afterwards: every write by the app user fails with error 1290
# until someone notices. The liveness probe catches it.
set -eu
mariadb -e "UNLOCK TABLES;"
echo "post: tables unlocked"   # and the server is still read-only
