#!/bin/sh
# BROKEN on purpose (teaching example): psql without ON_ERROR_STOP. psql reads a script on
# stdin, prints "ERROR:  function vmsnap_quiesce_begin() does not exist" and carries on to the
# next statement; at the end it exits 0 (without ON_ERROR_STOP an SQL error in a script never
# changes psql's exit code), so the failure is masked as success and the framework believes
# the database was quiesced (cybertec-postgresql/safe-backup#2).
# Fix: psql -v ON_ERROR_STOP=1 (then the error is exit code 3), and check what you rely on.
runuser -u postgres -- psql -X -d postgres <<'SQL'
SELECT vmsnap_quiesce_begin();
CHECKPOINT;
SQL
