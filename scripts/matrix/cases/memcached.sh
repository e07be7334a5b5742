#!/usr/bin/env bash
# memcached -t 4 (worker threads fed by a libevent listener thread) under
# memcslap (throughput: 8 concurrent clients), then a client that sets and
# gets 4 x 250 keys and checks every reply.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(memcached libmemcached-tools python3) commands=(memcached memcslap)
what='memcached -t 4; memcslap -c 8 + verifying client'
workload() {
  local port; port=$(mx_free_port)
  mx_server memcached memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 64 -u nobody
  local pid=$mx_server_pid
  mx_wait_port "$port" || return 1
  local t0=$EPOCHREALTIME
  memcslap --servers="127.0.0.1:$port" --concurrency=8 --execute-number=10000 >slap.log 2>&1 ||
    { cat slap.log >&2; return 1; }
  cat slap.log >&2
  mx_metric "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", 8 * 10000 / (b - a) }')" ops/s higher
  python3 "$mx_dir/mcclient.py" "$port" 4 250 || return 1
  kill -TERM "$pid"; mx_server_exit "$pid"
}
mx_main
