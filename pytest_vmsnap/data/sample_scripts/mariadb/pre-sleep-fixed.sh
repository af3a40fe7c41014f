#!/bin/sh
# BROKEN on purpose (teaching example): the lock lasts a fixed 2 s, not until the snapshot.
#
# The shape of gist asvignesh/cb0adc42 (`nohup mysql -e 'flush tables with read lock; ...
# do sleep(10)' &`): a background client takes FTWRL and then sleeps, so the lock ends when the
# SLEEP ends, whether or not the snapshot has been taken. The script even waits until the
# sleeper shows up in the process list, so a probe right after it sees writes blocked; the
# framework's freeze and snapshot come later than 2 s under real load, and by then the lock
# is gone. Pair: post.sh (finds no holder, nothing to release).
set -eu
mariadb -e "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(2);" </dev/null >/dev/null 2>&1 &
i=0
until [ -n "$(mariadb -N -B -e "SELECT ID FROM information_schema.PROCESSLIST
                               WHERE COMMAND = 'Query' AND INFO = 'SELECT SLEEP(2)'")" ]; do
  i=$((i + 1))
  [ "$i" -gt 100 ] && { echo "pre: the lock holder did not show up" >&2; exit 1; }
  sleep 0.05
done
echo "pre: FLUSH TABLES WITH READ LOCK held (for 2 s)"
