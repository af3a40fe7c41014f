#!/bin/sh
# BROKEN on purpose (teaching example): reports its failure on stdout, expecting it to be
# logged where the backup is watched, and exits 0.
# It reads its credentials from ~/.my.cnf: qemu-ga runs as a systemd service without HOME, so
# the client finds no file and (as the named user, without a password) is refused. The
# message goes to /var/log/qga-fsfreeze-hook.log only (or /dev/null when run as the hook
# itself under QEMU 7.2); the freeze goes ahead without any lock.
case "${1:-}" in
freeze)
  if ! mariadb --defaults-extra-file="$HOME/.my.cnf" -u backup -e 'FLUSH TABLES' 2>&1; then
    echo "WARNING: could not flush tables, snapshot will be crash-consistent"
  fi
  ;;
thaw) echo "thaw: nothing to do" ;;
esac
exit 0
