#!/bin/sh
# BROKEN on purpose (teaching example), the partner of pre-sets-readonly.sh: it exits 0 but
# never runs ALTER SYSTEM RESET default_transaction_read_only; the application is left
# read-only after the backup and the liveness probe fails.
echo "post: done"
