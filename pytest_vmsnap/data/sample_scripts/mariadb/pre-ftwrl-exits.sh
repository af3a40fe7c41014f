#!/bin/sh
# BROKEN on purpose (teaching example): the lock is released when the client exits.
#
# The shape of MicrosoftAzureBackup/MySQL `mysql-app-consistent-backup-funcs.sh` (2017): one
# `mariadb -e` runs FLUSH TABLES WITH READ LOCK and SET GLOBAL read_only = ON, then exits. FTWRL
# belongs to that session, so it ends a few milliseconds later, before the snapshot. Only
# read_only stays: it refuses writes by ordinary users (the app), but not by root or any user
# with READ_ONLY ADMIN / SUPER, and nothing holds MyISAM/Aria tables closed any more.
# Pair: post-readonly-off.sh (its counterpart) or post-leaves-readonly.sh (forgets read_only).
set -eu
mariadb -e "FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;"
echo "pre: tables flushed and locked, server read-only"   # only the second half is true
