#!/bin/sh
# PostgreSQL hook for VMware Tools (BROKEN: ignores freezeFail). freeze makes new
# transactions read-only (ALTER SYSTEM + reload) and thaw resets it; when anything after the
# freeze fails vmtoolsd calls 'freezeFail', which this script does not handle: the server
# stays read-only, and postgresql.auto.conf keeps it so across a restart.
set -eu
pg() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
case "${1:-}" in
  freeze)
    pg -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" \
       -c "CHECKPOINT"
    echo "freeze: new transactions are read-only"
    ;;
  thaw)
    pg -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()"
    echo "thaw: writes allowed again"
    ;;
esac
