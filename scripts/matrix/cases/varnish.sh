#!/usr/bin/env bash
# varnishd 7.1 (a manager process and a cache child with two thread pools
# of at least 20 workers, all of which enable one and the same alternate
# signal stack for its crash report) in front of a static backend, under
# wrk -c32 for 2 s, then curl checks every object's bytes and varnishadm
# that the child never panicked. Under the shim the runtime's handler ran
# on that one stack on several kernel threads at once until 2026-12-06
# (SIGSEGV and failed asserts in the child within seconds).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(varnish wrk curl python3) commands=(varnishd varnishadm wrk curl python3)
what='varnishd, 2 pools >= 20 workers; wrk -c32 2s'
prepare() {
  mkdir -p www && local i
  for i in $(seq 0 19); do head -c $((1000 + i * 3000)) /dev/urandom >"www/f$i"; done
  (cd www && sha256sum f* >../sums)
}
workload() {
  local port bport; port=$(mx_free_port); bport=$(mx_free_port)
  # The backend runs natively: only the program under test carries the shim.
  (cd ../www && exec python3 -m http.server "$bport" --bind 127.0.0.1) >backend.log 2>&1 &
  local backend=$!
  mx_wait_port "$bport" || { kill "$backend"; return 1; }
  mx_server varnishd varnishd -F -n "$PWD/vn" -a "127.0.0.1:$port" -b "127.0.0.1:$bport" -s malloc,64m \
    -p thread_pool_min=20
  local pid=$mx_server_pid
  mx_wait_port "$port" || { cat varnishd.log >&2; kill "$backend"; return 1; }
  local i
  for i in $(seq 0 19); do curl -sf -o /dev/null "http://127.0.0.1:$port/f$i" || { kill "$backend"; return 1; }; done
  wrk -t2 -c32 -d2s "http://127.0.0.1:$port/f5" >wrk.log 2>&1 || { cat wrk.log >&2; kill "$backend"; return 1; }
  cat wrk.log >&2
  grep -q 'Non-2xx\|Socket errors' wrk.log && { echo "wrk saw errors" >&2; kill "$backend"; return 1; }
  mx_metric "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' wrk.log)" req/s higher
  mkdir got
  for i in $(seq 0 19); do curl -sf -o "got/f$i" "http://127.0.0.1:$port/f$i" || { kill "$backend"; return 1; }; done
  (cd got && sha256sum -c --quiet ../../sums) && echo "20 files identical"
  varnishadm -n "$PWD/vn" panic.show 2>&1 | grep -q '^Panic' && echo "child panicked"
  kill "$backend"
  kill -TERM "$pid"; mx_server_exit "$pid"
}
mx_main
