#!/bin/sh
# PostgreSQL post-script (correct; 15 and newer): the pre-script held nothing, so there is
# nothing to release. It checks that the server is up and accepts writes again (not read-only,
# not in recovery) and fails loudly otherwise: a backup whose application is left unable to
# write is a failed backup.
# Runs as root under sh (dash): the framework ignores the shebang.
set -eu

PGSOCK=${PGSOCK:-/var/run/postgresql}
PGPORT=${PGPORT:-5432}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

# A temporary table is a real write that leaves nothing behind; it fails in a read-only
# transaction ("cannot execute CREATE TABLE in a read-only transaction").
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
