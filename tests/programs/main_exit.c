/* main_exit — main calls pthread_exit while other threads still run.
 *
 * main registers an atexit handler, starts 8 workers, prints, and calls
 * pthread_exit(NULL).  The workers wait until main has gone, sleep a little,
 * then print their results in turn (ordered with an atomic counter and
 * sched_yield); the last worker also joins worker 0.  The process must end
 * when the last thread ends, with status 0, running the atexit handler then
 * (it prints how many workers had finished: all of them) and flushing stdout.
 *
 * Fails when pthread_exit in main ends the process early (missing worker
 * lines, "done" < 8, status != 0), when the atexit handler is skipped or run
 * twice, or when the process never ends (runner timeout). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kWorkers = 8 };

static atomic_int g_main_gone;
static atomic_int g_turn;
static atomic_int g_done;
static atomic_int g_atexit_runs;
static pthread_t g_workers[kWorkers];

static void at_exit_handler(void) {
  int runs = atomic_fetch_add(&g_atexit_runs, 1) + 1;
  printf("atexit: run=%d workers done=%d\n", runs, atomic_load(&g_done));
}

static long work(int i) {
  long x = i + 1;
  for (int k = 0; k < 1000; k++) x = (x * 1103515245 + 12345) % 1000003;
  return x;
}

static void* worker(void* arg) {
  int i = (int)(intptr_t)arg;
  while (!atomic_load(&g_main_gone)) usleep(1000);
  usleep(20000); /* main is really gone by now */
  long r = work(i);
  while (atomic_load(&g_turn) != i) sched_yield();
  printf("worker %d: result %ld\n", i, r);
  if (i == kWorkers - 1) {
    void* res = NULL;
    int rc = pthread_join(g_workers[0], &res);
    printf("worker %d: joined worker 0: rc=%d value=%ld\n", i, rc, (long)(intptr_t)res);
  }
  atomic_fetch_add(&g_done, 1);
  atomic_fetch_add(&g_turn, 1);
  return (void*)(intptr_t)(100 + i);
}

int main(void) {
  mnp_report_shim();
  if (atexit(at_exit_handler) != 0) return 1;
  for (int i = 0; i < kWorkers; i++)
    if (pthread_create(&g_workers[i], NULL, worker, (void*)(intptr_t)i) != 0) return 1;
  printf("main: calling pthread_exit\n");
  atomic_store(&g_main_gone, 1);
  pthread_exit(NULL);
}
