#!/bin/sh
# BROKEN on purpose (teaching example): reports its failure on stdout, expecting it to be
# logged where the backup is watched, and exits 0 "so as not to block the backup".
# It connects as the postgres user from root (psql -U postgres), which peer authentication
# refuses. The message goes to /var/log/qga-fsfreeze-hook.log under the stock wrapper (to
# /dev/null when run as the hook itself under QEMU 7.2); qemu-ga's journal and the host's
# backup task never show it, and the CHECKPOINT never happened.
case "${1:-}" in
freeze)
  if ! psql -X -q -U postgres -h /var/run/postgresql -d postgres -c 'CHECKPOINT' 2>&1; then
    echo "WARNING: CHECKPOINT failed, continuing without it"
  fi
  ;;
thaw) echo "thaw: nothing to do" ;;
esac
exit 0
