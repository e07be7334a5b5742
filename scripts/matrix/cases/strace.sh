#!/usr/bin/env bash
# strace -f of a pthread program (ptrace follows the kernel threads: under
# the shim the Ms, not the Gs). Expected to pass.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-threaded.sh"
kind=tools packages=(strace gcc) commands=(strace gcc)
what='strace -f -c (8-thread program)'
prepare() { mx_gen_threaded; }
workload() {
  mx_exec strace -f -qq -c -o strace.log ../threaded || return 1
  grep -E ' total$' strace.log >&2
}
mx_main
