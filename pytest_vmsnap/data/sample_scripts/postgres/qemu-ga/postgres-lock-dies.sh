#!/bin/sh
# BROKEN on purpose (teaching example): the lock dies with the client.
# freeze: pg_backup_start() in a psql that exits at once. A non-exclusive backup lasts only as
# long as its session: when psql exits the server aborts it, so nothing is in progress during
# the snapshot. thaw: pg_backup_stop() in a new session fails with "backup is not in progress"
# (exit 3), and the stock wrapper only logs that.
set -eu
pg() {
  runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -d postgres "$@"
}
case "${1:-}" in
freeze) pg -c "SELECT pg_backup_start('qemu-ga', true)" >/dev/null ;;
thaw) pg -c "SELECT * FROM pg_backup_stop()" >/dev/null ;;
esac
