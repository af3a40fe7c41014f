#!/bin/sh
# BROKEN on purpose (teaching example): writes its progress and its failure to stdout,
# expecting qemu-ga to log them, and exits 0. It checkpoints with a 0 ms busy timeout, which
# fails with "database is locked" while the application writes, and only says so on stdout:
# that goes to /var/log/qga-fsfreeze-hook.log under the stock wrapper (to /dev/null when it is
# the hook itself under QEMU 7.2); nothing tells the host the checkpoint did not happen.
DB=${DB:-/var/lib/app/app.db}
case "${1:-}" in
freeze)
  echo "checkpointing $DB"
  sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' || echo "checkpoint failed"
  ;;
thaw) echo "thaw: nothing to do" ;;
esac
exit 0
