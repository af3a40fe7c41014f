#!/bin/sh
# BROKEN pair on purpose (teaching example), with post-leaves-readonly.sh: the pre-script makes
# every transaction read-only (ALTER SYSTEM SET default_transaction_read_only = on, reload) so
# that no write reaches the disk during the snapshot, and the post-script forgets to undo it.
# After the backup the application can still read but every write fails with
#   ERROR:  cannot execute INSERT in a read-only transaction
# until someone notices. ALTER SYSTEM writes postgresql.auto.conf into the data directory, so
# the snapshot (and every restore of it) is read-only too. The setting is only a default: a
# session can still SET default_transaction_read_only = off, so it is not even a real lock.
# Fix: use pre.sh/post.sh; if you must, undo it in the post-script with
#   ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();
set -eu
runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
ALTER SYSTEM SET default_transaction_read_only = on;
SELECT pg_reload_conf();
CHECKPOINT;
SQL
echo "pre: the database is read-only (for new transactions)"
