#!/usr/bin/env bash
# stunnel4 (a thread per connection) as a TLS front end for a native
# lighttpd, logging every connection (debug = 5: syslog with LOG_PERROR to
# its stderr), under ab -c16 for 4000 requests of a 100 KB file; then curl
# checks the file's bytes through it and SIGTERM must end it with status 0.
# Under load its ending threads, blocked on a malloc arena's lock inside
# glibc on their way out, were marked as in a system call by the blocked-M
# check, and about half the runs at 2 Ps died of "casgstatus: G from
# running to dead, but it is syscall" (fixed 2026-12-07).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(stunnel4 lighttpd apache2-utils openssl curl) commands=(stunnel4 lighttpd ab openssl curl)
what='stunnel4 TLS front end, thread per connection; ab -c16 4000 x 100 KB'
prepare() {
  mkdir -p www && head -c 100000 /dev/urandom >www/f100k
  (cd www && sha256sum f100k >../sums)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost 2>/dev/null
}
workload() {
  local back front root
  root=$(cd .. && pwd)
  back=$(mx_free_port)
  front=$(mx_free_port)
  # The back end runs natively in every mode: only stunnel is measured.
  cat >lighttpd.conf <<C
server.document-root = "$root/www"
server.port = $back
server.bind = "127.0.0.1"
server.pid-file = "$PWD/lighttpd.pid"
C
  lighttpd -D -f lighttpd.conf >lighttpd.log 2>&1 &
  local lpid=$!
  mx_wait_port "$back" || { cat lighttpd.log >&2; kill "$lpid"; return 1; }
  cat >stunnel.conf <<C
foreground = yes
pid =
debug = 5
[web]
accept = 127.0.0.1:$front
connect = 127.0.0.1:$back
cert = $root/cert.pem
key = $root/key.pem
C
  mx_server stunnel stunnel4 stunnel.conf
  local pid=$mx_server_pid
  mx_wait_port "$front" || { cat stunnel.log >&2; kill "$lpid"; return 1; }
  ab -q -n 4000 -c 16 "https://127.0.0.1:$front/f100k" >ab.log 2>&1 || { cat ab.log >&2; kill "$lpid"; return 1; }
  grep -E '^(Failed requests|Complete requests)' ab.log
  mx_metric "$(awk '/^Requests per second:/ { printf "%.0f", $4 }' ab.log)" req/s higher
  mkdir got
  curl -skf -o got/f100k "https://127.0.0.1:$front/f100k" || { kill "$lpid"; return 1; }
  (cd got && sha256sum -c --quiet ../../sums) && echo "file identical through the tunnel"
  kill -TERM "$pid"; mx_server_exit "$pid"
  kill "$lpid"; wait "$lpid" 2>/dev/null
  grep -a 'mnpthread: fatal' stunnel.log >&2 && return 1
  return 0
}
mx_main
