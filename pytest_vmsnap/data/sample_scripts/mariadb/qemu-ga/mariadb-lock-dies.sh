#!/bin/sh
# BROKEN on purpose (teaching example): the lock dies with the client.
# FLUSH TABLES WITH READ LOCK belongs to the session that took it; `mariadb -e` exits at once,
# the server releases the lock, and nothing is held while qemu-ga freezes and the host takes
# the snapshot. Only read_only stays, which root (SUPER) ignores.
case "${1:-}" in
freeze) mariadb -e 'FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;' ;;
thaw) mariadb -e 'SET GLOBAL read_only = OFF; UNLOCK TABLES;' ;;
esac
