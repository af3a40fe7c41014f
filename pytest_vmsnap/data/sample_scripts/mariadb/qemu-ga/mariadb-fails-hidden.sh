#!/bin/sh
# BROKEN on purpose (teaching example): fails on freeze, and the stock wrapper hides it.
# BACKUP STAGE BLOCK_COMMIT needs BACKUP STAGE START first in the same session, so the client
# fails ("ERROR 4185 ... Wrong backup stage") and the script exits 1. The wrapper logs
# "finished with status=1" in /var/log/qga-fsfreeze-hook.log and exits 0: qemu-ga freezes, the
# host takes the snapshot and calls it quiesced.
set -e
case "${1:-}" in
freeze) mariadb -e 'BACKUP STAGE BLOCK_COMMIT;' ;;
thaw) mariadb -e 'BACKUP STAGE END;' || true ;;
esac
