#!/bin/sh
# MariaDB / MySQL hook for VMware Tools (BROKEN: the lock dies with the client).
# freeze runs FLUSH TABLES WITH READ LOCK in a `mariadb -e` that exits at once: the lock
# belongs to that session and is gone before vmtoolsd freezes the file systems. Only
# read_only stays, which does not stop root/SUPER writers. thaw|freezeFail turn read_only off.
set -eu
if command -v mariadb >/dev/null 2>&1; then CLIENT=mariadb; else CLIENT=mysql; fi
case "${1:-}" in
  freeze)
    $CLIENT -e "FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;"
    echo "freeze: tables flushed and locked, server read-only"   # only the second half is true
    ;;
  thaw | freezeFail)
    $CLIENT -e "SET GLOBAL read_only = OFF;"
    echo "$1: read_only off"
    ;;
esac
