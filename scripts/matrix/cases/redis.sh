#!/usr/bin/env bash
# redis-server with io-threads 2 (reads too) under redis-benchmark (SET/GET,
# 32 clients, pipelining 4), then 2,000 SETs through `redis-cli --pipe` and
# a read-back of every key.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(redis-server redis-tools) commands=(redis-server redis-benchmark redis-cli)
what='redis io-threads 2; redis-benchmark -c 32 -P 4'
workload() {
  local port; port=$(mx_free_port)
  mx_server redis redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --io-threads 2 --io-threads-do-reads yes --daemonize no
  local pid=$mx_server_pid
  mx_wait_port "$port" || return 1
  redis-benchmark -p "$port" -c 32 -P 4 -n 4000 -r 1000 -t set,get --csv >bench.csv 2>&1 ||
    { cat bench.csv >&2; return 1; }
  cat bench.csv >&2
  mx_metric "$(awk -F'"' '/^"(SET|GET)"/ { s += $4; n++ } END { printf "%.0f", s / n }' bench.csv)" req/s higher
  redis-cli -p "$port" flushall >/dev/null
  for ((i = 0; i < 2000; i++)); do printf 'SET key:%d val:%d\r\n' "$i" "$((i * i))"; done >cmds
  redis-cli -p "$port" --pipe <cmds | tail -n 1
  for ((i = 0; i < 2000; i += 1)); do echo "GET key:$i"; done | redis-cli -p "$port" | sha256sum
  redis-cli -p "$port" dbsize
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
  mx_server_exit "$pid"
}
mx_main
