/* wired_yield_timer — a timed wait must end while wired threads yield.
 *
 * Twenty threads name themselves (PR_SET_NAME, which wires each to a
 * kernel thread of its own under the shim) and loop on sched_yield, as
 * GNAT's tasks do in `delay 0.0`; twenty more wait 100 s on a condition
 * variable. Main then makes fifty 10 ms timed waits (CLOCK_MONOTONIC), as
 * GNAT's `delay` does. A wired thread that yields with nothing else queued
 * on its P keeps the P, and the P's timers (main's among them) must still
 * run: before, main's wait never ended in about 1 run of 4 at 2 Ps.
 * Stdout: how many waits ended (50), as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>

#include "mnp_check.h"

static atomic_int stop;
static pthread_condattr_t mono;

/* A timed wait nobody signals: ETIMEDOUT after sec seconds, or stop. */
static void timed_wait(double sec) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c;
  pthread_cond_init(&c, &mono);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long ns = ts.tv_nsec + (long)((sec - (long)sec) * 1e9);
  ts.tv_sec += (long)sec + ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  pthread_mutex_lock(&m);
  int r;
  do r = pthread_cond_timedwait(&c, &m, &ts);
  while (r != ETIMEDOUT && !atomic_load(&stop));
  pthread_mutex_unlock(&m);
  pthread_cond_destroy(&c);
}

static void* yielder(void* a) {
  (void)a;
  prctl(PR_SET_NAME, "yielder");
  while (!atomic_load(&stop)) sched_yield();
  return NULL;
}

static void* sleeper(void* a) {
  (void)a;
  prctl(PR_SET_NAME, "sleeper");
  timed_wait(100);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_t y[20], s[20];
  for (int i = 0; i < 20; i++) pthread_create(&y[i], NULL, yielder, NULL);
  for (int i = 0; i < 20; i++) pthread_create(&s[i], NULL, sleeper, NULL);
  int ended = 0;
  for (int i = 0; i < 50; i++) {
    timed_wait(0.01);
    ended++;
  }
  printf("timed waits ended: %d\n", ended);
  atomic_store(&stop, 1);
  for (int i = 0; i < 20; i++) pthread_join(y[i], NULL);
  /* The sleepers wait 100 s: ended by the process's exit. */
  return 0;
}
