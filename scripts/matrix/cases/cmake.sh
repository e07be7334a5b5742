#!/usr/bin/env bash
# cmake configure + `cmake --build -j 4` (Unix Makefiles) of a C project with
# a static library and a threaded program; both programs then run.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$mx_dir/gen-cproject.sh"
kind=build packages=(cmake make gcc) commands=(cmake make gcc) MX_TREE=1
what='cmake configure + build -j4, 8 C files'
prepare() {
  mx_gen_cproject 8
  cat >CMakeLists.txt <<'C'
cmake_minimum_required(VERSION 3.13)
project(mx C)
find_package(Threads REQUIRED)
file(GLOB UNITS src/u*.c)
add_library(units STATIC ${UNITS})
add_executable(prog src/main.c)
target_link_libraries(prog units)
add_executable(count count.c)
target_link_libraries(count Threads::Threads)
C
  cat >count.c <<'C'
#include <pthread.h>
#include <stdio.h>
static long out[8];
static void* work(void* a) { long i = (long)a, s = 0; for (long k = 0; k < 100000 * (i + 1); k++) s += k % 7; out[i] = s; return 0; }
int main(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, work, (void*)i);
  for (int i = 0; i < 8; i++) { pthread_join(t[i], 0); printf("%d %ld\n", i, out[i]); }
  return 0;
}
C
}
workload() {
  cp -a ../src ../CMakeLists.txt ../count.c . || return 1
  mx_exec cmake -S . -B b -G 'Unix Makefiles' >cfg.log 2>&1 || { cat cfg.log >&2; return 1; }
  mx_exec cmake --build b -j 4 >build.log 2>&1 || { cat build.log >&2; return 1; }
  ./b/prog && ./b/count
}
mx_main
