#!/usr/bin/env bash
# ninja -j4 building 16 C files (ninja's subprocess set: ppoll on the
# children's pipes with SIGCHLD), then the program runs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-cproject.sh"
kind=build packages=(ninja-build gcc) commands=(ninja gcc) MX_TREE=1
what='ninja -j4, 16 C files, gcc -O2'
prepare() {
  mx_gen_cproject 16
  {
    printf 'rule cc\n  command = gcc -O2 -c $in -o $out\nrule link\n  command = gcc $in -o $out\n'
    objs=''
    for f in src/*.c; do
      o=obj/$(basename "$f" .c).o
      printf 'build %s: cc %s\n' "$o" "$f"
      objs+=" $o"
    done
    printf 'build prog: link%s\n' "$objs"
  } >build.ninja
}
workload() {
  cp -a ../src ../build.ninja . || return 1
  mx_exec ninja -j4 >ninja.log 2>&1 || { cat ninja.log >&2; return 1; }
  ./prog
}
mx_main
