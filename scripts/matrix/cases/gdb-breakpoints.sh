#!/usr/bin/env bash
# gdb counts a breakpoint that each of 4 computing threads passes once: 4
# reports, as natively. The runtime's signal ends a time slice that runs
# over (sysmon); one that arrived while gdb stepped a thread over the
# breakpoint (breakpoint removed, one instruction stepped, put back) made
# the thread meet it again after its handler: 5-6 reports at MNP_PROCS=1 in
# most runs, before preemption under a tracer waited longer for its signal
# (docs/ARCHITECTURE.md, "Time slice and preemption").
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=tools packages=(gdb gcc) commands=(gdb gcc) fast=1
what='gdb -batch: a breakpoint with commands, passed once by each of 4 threads'
prepare() {
  cat >bp.c <<'C'
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long total;
__attribute__((noinline)) long work(int id, long n) {
  long s = 0;
  for (long i = 0; i < n; i++) s += (i ^ id) & 7;
  return s;
}
__attribute__((noinline)) void add(int id, long s) {
  (void)id;
  pthread_mutex_lock(&mu);
  total += s;
  pthread_mutex_unlock(&mu);
}
static void* worker(void* arg) {
  int id = (int)(long)arg;
  long s = work(id, 3000000);
  add(id, s);
  usleep(1000);
  return NULL;
}
int main(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("total=%ld\n", total);
  return 0;
}
C
  gcc -g -O0 -pthread -o bp bp.c
  cat >bp.gdb <<'G'
set pagination off
break add
commands
silent
printf "HIT id=%d\n", id
continue
end
run
G
}
workload() {
  mx_exec gdb -nx -q -batch -x ../bp.gdb ../bp >gdb.log 2>&1 || { cat gdb.log >&2; return 1; }
  cat gdb.log >&2
  # Which thread gets there first varies, natively too: the sorted list.
  grep -E '^HIT ' gdb.log | sort
  grep -E '^total=' gdb.log
}
mx_main
