#!/bin/sh
# First start: a cluster whose superuser is POSTGRES_USER (password login from the network) and
# the database POSTGRES_DB in UTF-8, as the official image makes; then the server in the
# foreground.
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s' "$POSTGRES_PASSWORD" >/run/postgresql/pw
  chown postgres /run/postgresql/pw
  su postgres -s /bin/sh -c "initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile=/run/postgresql/pw \
    --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null"
  rm /run/postgresql/pw
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  su postgres -s /bin/sh -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start >/dev/null"
  su postgres -s /bin/sh -c "psql -U '$POSTGRES_USER' -d postgres -q -c 'CREATE DATABASE \"$POSTGRES_DB\"'"
  su postgres -s /bin/sh -c "pg_ctl -D '$PGDATA' -m fast -w stop >/dev/null"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*'
