#!/bin/sh
# A quiesce-style script written for a production Debian MariaDB server, with the paths hard-coded
# the way such scripts are found in the wild: it must run unchanged inside the stand-in VM.
set -eu
test -f /etc/mysql/my.cnf
test -d /etc/mysql/mariadb.conf.d
test -f /etc/mysql/mariadb.conf.d/50-server.cnf
test -S /var/run/mysqld/mysqld.sock
test -S /run/mysqld/mysqld.sock
mysqladmin --defaults-file=/etc/mysql/my.cnf --socket=/var/run/mysqld/mysqld.sock ping
mysql --defaults-file=/etc/mysql/my.cnf -uroot --socket=/var/run/mysqld/mysqld.sock -N -B \
  -e "FLUSH TABLES; SELECT CONCAT('datadir=', @@datadir)"
echo "user=$(stat -c %U /var/lib/mysql) on $(findmnt -n -o SOURCE /var/lib/mysql)"
