#!/bin/sh
# First start: create the datadir, the database and its user (as the official image does), then
# run the server in the foreground on every interface.
set -eu
data=/var/lib/mysql
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$data"
if [ ! -d "$data/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$data" --skip-test-db >/dev/null
  mariadbd --user=mysql --datadir="$data" --skip-networking --socket=/run/mysqld/setup.sock &
  setup=$!
  until mariadb-admin --socket=/run/mysqld/setup.sock ping >/dev/null 2>&1; do sleep 0.2; done
  mariadb --socket=/run/mysqld/setup.sock <<SQL
CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\` CHARACTER SET utf8mb4;
CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';
SQL
  kill "$setup"
  wait "$setup" || true
fi
exec mariadbd --user=mysql --datadir="$data" --bind-address=0.0.0.0 --port=3306
