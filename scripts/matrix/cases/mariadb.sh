#!/usr/bin/env bash
# mariadbd (a thread per connection, InnoDB's background threads) in a fresh
# data directory under mysqlslap (16 clients, mixed load), then a query.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=database packages=(mariadb-server mariadb-client) commands=(mariadbd mariadb-install-db mysqlslap mariadb)
what='mariadbd; mysqlslap -c 16 mixed'
workload() {
  mariadb-install-db --no-defaults --datadir="$PWD/data" --user="$(id -un)" >install.log 2>&1 ||
    { cat install.log >&2; return 1; }
  mx_server mariadbd mariadbd --no-defaults --datadir="$PWD/data" --socket="$PWD/my.sock" --skip-networking \
    --user="$(id -un)" --skip-grant-tables --innodb-buffer-pool-size=64M
  local pid=$mx_server_pid
  mx_wait_file -S my.sock || { cat mariadbd.log >&2; return 1; }
  mysqlslap --socket="$PWD/my.sock" -uroot --concurrency=16 --iterations=1 --number-of-queries=2000 \
    --auto-generate-sql --auto-generate-sql-load-type=mixed >slap.log 2>&1 || { cat slap.log >&2; return 1; }
  cat slap.log >&2
  mx_metric "$(awk '/Average number of seconds/ { printf "%.0f", 2000 / $(NF) }' slap.log)" queries/s higher
  mariadb --socket="$PWD/my.sock" -uroot -N mysql -e 'select sum(seq) from seq_1_to_100000'
  mariadb --socket="$PWD/my.sock" -uroot -N -e 'create database d; create table d.t(a int primary key, b text) engine=innodb;
    insert into d.t select seq, repeat("x", seq % 50) from seq_1_to_20000; select count(*), sum(length(b)) from d.t'
  mariadb-admin --socket="$PWD/my.sock" -uroot shutdown
  mx_server_exit "$pid"
}
mx_main
