#!/usr/bin/env bash
# lighttpd with 2 worker processes (each a single-threaded event loop)
# serving static files under wrk -c32 for 2 s, then curl checks every
# file's bytes.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(lighttpd wrk curl) commands=(lighttpd wrk curl)
what='lighttpd 2 worker processes; wrk -c32 2s'
prepare() {
  mkdir -p www && local i
  for i in $(seq 0 19); do head -c $((1000 + i * 3000)) /dev/urandom >"www/f$i"; done
  (cd www && sha256sum f* >../sums)
}
workload() {
  local port; port=$(mx_free_port)
  cat >lighttpd.conf <<C
server.document-root = "$(cd .. && pwd)/www"
server.port = $port
server.bind = "127.0.0.1"
server.errorlog = "$PWD/error.log"
server.pid-file = "$PWD/lighttpd.pid"
server.max-worker = 2
C
  # A session of its own: with workers, lighttpd's master stops them with
  # kill(0, SIGTERM), which would reach this script too.
  mx_server lighttpd setsid lighttpd -D -f lighttpd.conf
  local pid=$mx_server_pid
  mx_wait_port "$port" || { cat lighttpd.log error.log >&2; return 1; }
  wrk -t2 -c32 -d2s "http://127.0.0.1:$port/f5" >wrk.log 2>&1 || { cat wrk.log >&2; return 1; }
  cat wrk.log >&2
  grep -q 'Non-2xx' wrk.log && { echo "wrk saw errors" >&2; return 1; }
  mx_metric "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' wrk.log)" req/s higher
  mkdir got && local i
  for i in $(seq 0 19); do curl -sf -o "got/f$i" "http://127.0.0.1:$port/f$i" || return 1; done
  (cd got && sha256sum -c --quiet ../../sums) && echo "20 files identical"
  kill -TERM "$pid"; mx_server_exit "$pid"
}
mx_main
