#!/usr/bin/env bash
# unbound with num-threads 2 answering 200 local-data names under dnsperf
# (2 s, 20 outstanding queries), then dig checks every answer against the
# address its local-data gives.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=server packages=(unbound dnsperf bind9-dnsutils) commands=(unbound dnsperf dig)
what='unbound num-threads 2; dnsperf 2s + dig check'
workload() {
  local port; port=$(mx_free_port)
  {
    printf 'server:\n  interface: 127.0.0.1\n  port: %s\n  num-threads: 2\n' "$port"
    printf '  do-daemonize: no\n  chroot: ""\n  username: ""\n  directory: "%s"\n' "$PWD"
    printf '  pidfile: "%s/unbound.pid"\n  use-syslog: no\n  logfile: ""\n' "$PWD"
    printf '  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n  local-zone: "mx.test." static\n'
    for ((i = 0; i < 200; i++)); do
      printf '  local-data: "h%d.mx.test. 300 IN A 10.%d.%d.%d"\n' "$i" $((i % 7)) $((i / 7)) $((i % 251))
    done
  } >unbound.conf
  for ((i = 0; i < 200; i++)); do echo "h$i.mx.test A"; done >queries
  mx_server unbound unbound -d -c unbound.conf
  local pid=$mx_server_pid
  local ok=0
  for ((i = 0; i < 100; i++)); do
    dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 h0.mx.test >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
  done
  ((ok)) || { cat unbound.log >&2; return 1; }
  dnsperf -s 127.0.0.1 -p "$port" -d queries -l 2 -q 20 >perf.log 2>&1 || { cat perf.log >&2; return 1; }
  cat perf.log >&2
  mx_metric "$(awk '/Queries per second:/ { printf "%.0f", $4 }' perf.log)" queries/s higher
  grep -E 'Queries lost: +0 ' perf.log >/dev/null || echo "dnsperf lost queries: $(grep 'Queries lost' perf.log)" >&2
  for ((i = 0; i < 200; i++)); do echo "h$i.mx.test"; done >names
  for ((i = 0; i < 200; i++)); do echo "10.$((i % 7)).$((i / 7)).$((i % 251))"; done >expected
  dig +short -p "$port" @127.0.0.1 -f names >answers
  # The answers themselves, so that a run that differs says how (stderr).
  if cmp -s expected answers; then echo "200 answers correct"; else
    echo "answers differ"
    diff expected answers | head -n 8 >&2
  fi
  kill -TERM "$pid"; mx_server_exit "$pid"
}
mx_main
