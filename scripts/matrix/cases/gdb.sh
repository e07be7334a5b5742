#!/usr/bin/env bash
# gdb (itself threaded) runs a pthread program to a breakpoint after all
# threads joined, prints a variable, continues to the end. Under the shim
# both gdb and the program carry it (gdb passes LD_PRELOAD on); expected to
# pass: the runtime's SIGURG is "nostop noprint pass" in gdb by default.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-threaded.sh"
kind=tools packages=(gdb gcc) commands=(gdb gcc)
what='gdb -batch: break, run, print, continue (8-thread program)'
prepare() { mx_gen_threaded; }
workload() {
  mx_exec gdb -nx -q -batch -ex 'set pagination off' -ex 'break done' -ex run -ex 'print result' \
    -ex continue ../threaded >gdb.log 2>&1 || { cat gdb.log >&2; return 1; }
  cat gdb.log >&2
  grep -E '^(\$1 = |total |\[Inferior 1 \(process [0-9]+\) exited normally\])' gdb.log | sed 's/process [0-9]*/process N/'
}
mx_main
