#!/usr/bin/env bash
# nginx (master + 2 workers, `aio threads` with a thread pool of 4, sendfile
# off so reads go through the pool) under wrk -t2 -c32 for 2 s, then curl
# fetches every file and checks its bytes.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(nginx-light wrk curl) commands=(nginx wrk curl) MX_TREE=1
what='nginx thread_pool (aio threads) x2 workers; wrk -c32 2s'
prepare() {
  mkdir -p www && local i
  for i in $(seq 0 19); do head -c $((1000 + i * 3000)) /dev/urandom >"www/f$i"; done
  (cd www && sha256sum f* >../sums)
}
workload() {
  local port; port=$(mx_free_port)
  mkdir -p logs tmp
  cat >nginx.conf <<C
worker_processes 2;
pid $PWD/nginx.pid;
error_log $PWD/logs/error.log;
thread_pool mx threads=4;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $PWD/tmp; proxy_temp_path $PWD/tmp; fastcgi_temp_path $PWD/tmp;
  uwsgi_temp_path $PWD/tmp; scgi_temp_path $PWD/tmp;
  server { listen 127.0.0.1:$port; root $(cd .. && pwd)/www; sendfile off; aio threads=mx; }
}
C
  mx_server nginx nginx -p "$PWD" -c "$PWD/nginx.conf" -g 'daemon off;'
  local pid=$mx_server_pid
  mx_wait_port "$port" || { cat nginx.log logs/error.log >&2; return 1; }
  wrk -t2 -c32 -d2s "http://127.0.0.1:$port/f5" >wrk.log 2>&1 || { cat wrk.log >&2; return 1; }
  cat wrk.log >&2
  grep -q 'Non-2xx' wrk.log && { echo "wrk saw errors" >&2; return 1; }
  mx_metric "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' wrk.log)" req/s higher
  mkdir got && local i
  for i in $(seq 0 19); do curl -sf -o "got/f$i" "http://127.0.0.1:$port/f$i" || return 1; done
  (cd got && sha256sum -c --quiet ../../sums) && echo "20 files identical"
  kill -QUIT "$pid"; mx_server_exit "$pid"
}
mx_main
