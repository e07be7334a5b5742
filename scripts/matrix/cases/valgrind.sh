#!/usr/bin/env bash
# valgrind --tool=none (the JIT alone, no checking) of a pthread program,
# with the shim in the guest. valgrind serialises the guest's threads and
# emulates arch_prctl and the switch between Gs; see the case's notes for
# what it does.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-threaded.sh"
kind=tools packages=(valgrind gcc) commands=(valgrind gcc)
what='valgrind --tool=none (8-thread program)'
prepare() { mx_gen_threaded; }
workload() { mx_exec valgrind -q --tool=none ../threaded; }
mx_main
