/* exit_from_thread — exit(42) from a non-main thread while others are busy.
 *
 * Threads: one blocked in read() on a pipe nobody writes, one blocked in
 * pthread_join of that reader, one sleeping in a usleep loop, one spinning
 * on sched_yield; main is blocked in pthread_join of the exiting thread.
 * When all are in place the exiter calls exit(42).  The atexit handler runs
 * exactly once, in the exiting thread, and stdout is flushed.
 *
 * Fails when the exit status is not 42, the atexit handler does not run or
 * runs twice, stdout is lost, or a blocked thread keeps the process alive
 * (runner timeout). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int g_ready;
static atomic_int g_atexit_runs;
static int g_pipe[2];
static pthread_t g_reader;

static void at_exit_handler(void) {
  int runs = atomic_fetch_add(&g_atexit_runs, 1) + 1;
  printf("atexit: run=%d ready=%d\n", runs, atomic_load(&g_ready));
}

static void* reader(void* arg) {
  (void)arg;
  char c;
  atomic_fetch_add(&g_ready, 1);
  ssize_t n = read(g_pipe[0], &c, 1);
  printf("reader: not reached (%zd)\n", n);
  return NULL;
}

static void* joiner(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_ready, 1);
  pthread_join(g_reader, NULL);
  printf("joiner: not reached\n");
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_ready, 1);
  for (;;) usleep(1000);
  return NULL;
}

static void* spinner(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_ready, 1);
  for (;;) sched_yield();
  return NULL;
}

static void* exiter(void* arg) {
  (void)arg;
  while (atomic_load(&g_ready) < 4) sched_yield();
  usleep(20000); /* let the reader and joiner really block */
  printf("exiter: calling exit(42) with ready=%d\n", atomic_load(&g_ready));
  exit(42);
}

int main(void) {
  mnp_report_shim();
  if (atexit(at_exit_handler) != 0 || pipe(g_pipe) != 0) return 1;
  pthread_t t;
  if (pthread_create(&g_reader, NULL, reader, NULL) != 0) return 1;
  if (pthread_create(&t, NULL, joiner, NULL) != 0) return 1;
  if (pthread_create(&t, NULL, sleeper, NULL) != 0) return 1;
  if (pthread_create(&t, NULL, spinner, NULL) != 0) return 1;
  printf("main: joining the exiter\n");
  pthread_t x;
  if (pthread_create(&x, NULL, exiter, NULL) != 0) return 1;
  pthread_join(x, NULL);
  printf("main: not reached\n");
  return 1;
}
