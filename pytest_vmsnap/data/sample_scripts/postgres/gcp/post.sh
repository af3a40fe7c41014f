#!/bin/sh
# PostgreSQL post.sh for Compute Engine guest-flush snapshots (correct; 15 and newer): pre.sh
# held nothing, so there is nothing to release. It checks that the server accepts writes again
# (not read-only, not in recovery) and fails loudly otherwise; the agent then answers
# UNHANDLED_SCRIPT_ERROR for POST_SNAPSHOT.
set -eu

PGSOCK=/var/run/postgresql
PGPORT=5432
export PGCONNECT_TIMEOUT=10

# A temporary table is a real write that leaves nothing behind.
if ! out=$(runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" \
    -d postgres 2>&1 <<'SQL'
SELECT CASE WHEN pg_is_in_recovery() THEN 'in recovery' ELSE 'primary' END
       || ', default_transaction_read_only=' || current_setting('default_transaction_read_only');
CREATE TEMP TABLE vmsnap_post_check (x integer);
INSERT INTO vmsnap_post_check VALUES (1);
SQL
); then
  echo "post: PostgreSQL does not accept writes: $out" >&2
  exit 1
fi
echo "post: PostgreSQL accepts writes ($out)"
