#!/usr/bin/env bash
# perf stat (counting task-clock and context switches) of a pthread
# program; perf and the program carry the shim. Expected to pass.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-threaded.sh"
kind=tools packages=(linux-perf gcc) commands=(perf gcc)
what='perf stat -e task-clock,context-switches (8-thread program)'
prepare() { mx_gen_threaded; }
workload() {
  mx_exec perf stat -x, -o stat.csv -e task-clock,context-switches -- ../threaded || return 1
  cat stat.csv >&2
  grep -c -E ',(task-clock|context-switches),' stat.csv
}
mx_main
