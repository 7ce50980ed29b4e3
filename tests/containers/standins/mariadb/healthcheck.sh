#!/bin/sh
# The official image's check, for the two options compose.yaml passes: the server takes a
# connection and InnoDB is ready.
exec mariadb --socket=/run/mysqld/mysqld.sock -N -e \
  "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT')" \
  | grep -q 1
