#!/usr/bin/env bash
# PostgreSQL (a process per connection; the shim in the postmaster and every
# backend) under pgbench -c 8 -j 2 (pgbench's own threads) for 600
# transactions; then the TPC-B invariant: the sum of account balances equals
# the sum of the history's deltas.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=database packages=(postgresql postgresql-contrib) commands=(setpriv) MX_TREE=1
what='postgres; pgbench -c 8 -j 2, 600 tx'
workload() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  local port; port=$(mx_free_port)
  local -a as=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
  mkdir -p data sock && chown postgres: data sock && chmod 700 data || return 1
  "${as[@]}" "$bin/initdb" -D data -A trust -U postgres >init.log 2>&1 || { cat init.log >&2; return 1; }
  mx_server postgres "${as[@]}" "$bin/postgres" -D data -p "$port" -k "$PWD/sock" -c listen_addresses='' \
    -c fsync=off -c synchronous_commit=off
  local pid=$mx_server_pid
  mx_wait_file -S "sock/.s.PGSQL.$port" || { cat postgres.log >&2; return 1; }
  sleep 0.5
  local -a pg=(-h "$PWD/sock" -p "$port" -U postgres)
  "$bin/pgbench" "${pg[@]}" -i -q -s 1 postgres >pgi.log 2>&1 || { cat pgi.log >&2; return 1; }
  "$bin/pgbench" "${pg[@]}" -c 8 -j 2 -t 75 postgres >pgb.log 2>&1 || { cat pgb.log >&2; return 1; }
  cat pgb.log >&2
  mx_metric "$(awk '/^tps = / { printf "%.0f", $3 }' pgb.log)" tx/s higher
  grep -E '^number of transactions actually processed' pgb.log
  "$bin/psql" "${pg[@]}" -At -c 'select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history), (select count(*) from pgbench_history)' postgres
  kill -INT "$pid"; mx_server_exit "$pid"
}
mx_main
