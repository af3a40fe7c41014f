#!/bin/sh
# BROKEN on purpose (teaching example): fails on freeze, and the stock wrapper hides it.
# pg_start_backup() was removed in PostgreSQL 15, so psql (ON_ERROR_STOP=1) exits 3 with
# "function pg_start_backup(unknown, boolean) does not exist". The wrapper
# /etc/qemu/fsfreeze-hook logs "finished with status=3" and exits 0, so qemu-ga freezes and
# the host takes a snapshot it calls quiesced.
set -eu
pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -d postgres "$@"
}
case "${1:-}" in
freeze) pg -c "SELECT pg_start_backup('qemu-ga', true)" ;;
thaw) pg -c "SELECT pg_stop_backup()" ;;
esac
