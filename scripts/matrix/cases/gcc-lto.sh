#!/usr/bin/env bash
# gcc -flto=auto: link-time optimisation of 16 units, partitioned and run
# by lto-wrapper as parallel ltrans jobs (it starts `make -jN` itself).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-cproject.sh"
kind=build packages=(gcc make) commands=(gcc make) MX_TREE=1
what='gcc -O2 -flto=auto, 16 units'
prepare() { mx_gen_cproject 16; }
workload() {
  cp -a ../src . || return 1
  mx_exec gcc -O2 -flto=auto -flto-partition=balanced --param lto-partitions=4 -o prog src/*.c \
    >gcc.log 2>&1 || { cat gcc.log >&2; return 1; }
  ./prog
}
mx_main
