#!/usr/bin/env bash
# haproxy with nbthread 2: answers /fast itself (http-request return) under
# wrk -c32 for 2 s, and proxies everything else to a native python
# http.server; curl checks every proxied file's bytes.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(haproxy wrk curl python3) commands=(haproxy wrk curl)
what='haproxy nbthread 2; wrk -c32 2s + proxied files'
prepare() {
  mkdir -p www && local i
  for i in $(seq 0 9); do head -c $((1000 + i * 5000)) /dev/urandom >"www/f$i"; done
  (cd www && sha256sum f* >../sums)
}
workload() {
  local port bport; port=$(mx_free_port); bport=$(mx_free_port)
  (cd ../www && exec python3 -m http.server -b 127.0.0.1 "$bport") >backend.log 2>&1 &
  local bpid=$!
  cat >haproxy.cfg <<C
global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$port
  http-request return status 200 content-type text/plain string "fast reply" if { path /fast }
  default_backend be
backend be
  server b1 127.0.0.1:$bport
C
  mx_server haproxy haproxy -db -f haproxy.cfg
  local pid=$mx_server_pid
  mx_wait_port "$port" && mx_wait_port "$bport" || { cat haproxy.log >&2; kill "$bpid"; return 1; }
  wrk -t2 -c32 -d2s "http://127.0.0.1:$port/fast" >wrk.log 2>&1 || { cat wrk.log >&2; kill "$bpid"; return 1; }
  cat wrk.log >&2
  grep -q 'Non-2xx' wrk.log && { echo "wrk saw errors" >&2; kill "$bpid"; return 1; }
  mx_metric "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' wrk.log)" req/s higher
  mkdir got && local i
  for i in $(seq 0 9); do curl -sf -o "got/f$i" "http://127.0.0.1:$port/f$i" || { kill "$bpid"; return 1; }; done
  (cd got && sha256sum -c --quiet ../../sums) && echo "10 proxied files identical"
  kill "$bpid"; wait "$bpid" 2>/dev/null
  kill -USR1 "$pid"; mx_server_exit "$pid"
}
mx_main
