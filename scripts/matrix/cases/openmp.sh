#!/usr/bin/env bash
# An OpenMP program (gcc -fopenmp, libgomp): parallel-for reductions,
# dynamic scheduling, tasks and barriers with OMP_NUM_THREADS=8. libgomp
# waits in futexes with inline `syscall` instructions (libgomp.so.1 on
# Debian 12 has 38, and 2 calls of syscall()), which no wrapper covers: a
# waiting thread blocks its M, and sysmon hands the P on (README,
# "Blocking system calls"), hence about one kernel thread per thread under
# the shim too.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=numeric packages=(gcc libgomp1) commands=(gcc) fast=1
what='gcc -fopenmp: reductions, tasks, barriers, 8 threads'
prepare() {
  cat >omp.c <<'C'
#include <omp.h>
#include <stdio.h>
#include <stdint.h>
static uint64_t fib(int n) {
  if (n < 18) { uint64_t a = 0, b = 1; for (int i = 0; i < n; i++) { uint64_t t = a + b; a = b; b = t; } return a; }
  uint64_t x, y;
  #pragma omp task shared(x)
  x = fib(n - 1);
  #pragma omp task shared(y)
  y = fib(n - 2);
  #pragma omp taskwait
  return x + y;
}
int main(void) {
  double s = 0;
  for (int rep = 0; rep < 20; rep++) {
    #pragma omp parallel for reduction(+:s) schedule(dynamic, 1000)
    for (long i = 1; i <= 2000000; i++) s += 1.0 / ((double)i * i);
  /* The reduction adds the threads' partial sums in whatever order they
     finish, natively too: the last digits of s vary from run to run, so
     only 9 decimals are printed. */
  }
  long hits = 0;
  #pragma omp parallel reduction(+:hits)
  {
    for (int b = 0; b < 200; b++) {
      #pragma omp barrier
      hits++;
    }
  }
  uint64_t f;
  #pragma omp parallel
  #pragma omp single
  f = fib(27);
  printf("%.9f %ld %llu\n", s, hits / omp_get_max_threads(), (unsigned long long)f);
  return 0;
}
C
  gcc -O2 -fopenmp -o omp omp.c
}
workload() { OMP_NUM_THREADS=8 mx_exec ../omp; }
mx_main
