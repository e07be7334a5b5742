#!/usr/bin/env bash
# GNU make -j4 building 16 C files with gcc -O2 (make waits for its children
# in pselect with SIGCHLD; every gcc, cc1, as and ld carries the shim too),
# then the program runs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-cproject.sh"
kind=build packages=(make gcc) commands=(make gcc) MX_TREE=1
what='make -j4, 16 C files, gcc -O2'
prepare() {
  mx_gen_cproject 16
  cat >Makefile <<'M'
SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=obj/%.o)
prog: $(OBJS)
	$(CC) -o $@ $^
obj/%.o: src/%.c
	@mkdir -p obj
	$(CC) -O2 -c -o $@ $<
M
}
workload() {
  cp -a ../src ../Makefile . || return 1
  mx_exec make -s -j4 >make.log 2>&1 || { cat make.log >&2; return 1; }
  ./prog
}
mx_main
