#!/bin/sh
# Counterpart of pre-ftwrl-exits.sh (the Azure 2017 sample's post): turns read_only off again.
# Its UNLOCK TABLES is a no-op: it runs in a new session, which holds no lock (the session
# that took FTWRL in the pre-script is long gone). Correct as an undo, but the pair as a whole
# protected nothing except against ordinary users' writes.
set -eu
mariadb -e "SET GLOBAL read_only = OFF; UNLOCK TABLES;"
echo "post: read_only off"
