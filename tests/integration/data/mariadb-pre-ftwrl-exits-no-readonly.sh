#!/bin/sh
# BROKEN on purpose (test data for tests/integration/test_oracle_catches.py): the FTWRL pitfall
# with nothing else to hide it. One `mariadb -e` takes FLUSH TABLES WITH READ LOCK and exits:
# the lock belongs to that session and ends with it, milliseconds later, long before the
# freeze and the snapshot. Unlike the sample pre-ftwrl-exits.sh
# (pytest_vmsnap/data/sample_scripts/mariadb/) this one does not set read_only, so the
# application user's writes (InnoDB, and the MyISAM table
# vmsnap_events) go on straight through the "quiesced" window. Pair: sample post.sh (finds
# no holder, nothing to release).
set -eu
mariadb -e "FLUSH TABLES WITH READ LOCK;"
echo "pre: tables flushed and locked (and unlocked again as the client exited)"
