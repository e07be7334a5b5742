/* sched_fifo.c — SCHED_FIFO threads are scheduled by their priorities.
 *
 * The whole process is pinned to one CPU (sched_setaffinity(0) on the main
 * thread before any other thread exists, so every thread inherits the mask)
 * and the main thread takes SCHED_FIFO; the threads it creates get their
 * SCHED_FIFO priority from the attribute (PTHREAD_EXPLICIT_SCHED). On one
 * CPU the kernel then runs the highest-priority runnable thread until it
 * blocks or ends, and a sched_yield lets only threads of the same priority
 * run. Scenarios (argv[1]):
 *   order   main at priority 50 creates four threads at 10, 30, 20, 40,
 *           which wait at a gate (a condition variable) until main, once all
 *           four are there, opens it with a broadcast and joins them: the
 *           four, runnable at once, run one after the other from the
 *           highest priority down, each to its end although it calls
 *           sched_yield in its loop. Each records its start and its end in a
 *           shared log; main checks that none passed the gate before it
 *           blocked in the join.
 *   yield   main at priority 1 creates one thread at 10 that counts to 2000,
 *           calling sched_yield at every step: the child runs as soon as it
 *           exists and the parent, lower, does not run again until the
 *           child has finished. The parent reads the count right after
 *           pthread_create returns: the final count (natively), not 0 or a
 *           count in between.
 *   starve  no pinning, main not real-time: a SCHED_FIFO thread spins on
 *           sched_yield until a flag is set by an ordinary thread main
 *           creates after it. Natively the ordinary thread runs on another
 *           CPU (or, on one CPU, when the kernel's real-time throttling
 *           leaves it a share); under the shim at MNP_PROCS=1 the spinner
 *           holds the only P and the ordinary Gs get it only when its
 *           real-time slice (the same bandwidth) ends: the spinner must not
 *           keep it for ever (about a second there).
 *   starve-call  the same with a spinner that calls waitpid(WNOHANG) in its
 *           loop instead of sched_yield: a wrapped call's return, where a
 *           G whose slice ended stops, must put it behind the ordinary Gs
 *           as the end of its slice does (it once put it first again).
 * Without the right to real-time scheduling (EPERM), all print the same
 * "skipped" line. alarm() catches a hang (default action). Stdout: the
 * run's order and counts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kYieldSteps = 2000 };

static atomic_int log_n;
static int log_v[16];
static atomic_int counter;

static void note(int v) {
  int i = atomic_fetch_add(&log_n, 1);
  if (i < 16) log_v[i] = v;
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t open_cv = PTHREAD_COND_INITIALIZER;
static int arrived, gate_open;

static void* ordered(void* a) {
  int prio = (int)(long)a;
  pthread_mutex_lock(&gate_mu);
  arrived++;
  pthread_cond_signal(&arrived_cv);
  while (!gate_open) pthread_cond_wait(&open_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  note(prio);
  for (int i = 0; i < 200; i++) {
    for (volatile int j = 0; j < 200; j++) {
    }
    sched_yield();
  }
  note(-prio);
  return NULL;
}

static void* yielder(void* a) {
  (void)a;
  for (int i = 0; i < kYieldSteps; i++) {
    atomic_fetch_add(&counter, 1);
    sched_yield();
  }
  return NULL;
}

static atomic_int flag;
static void* setter(void* a) {
  (void)a;
  atomic_store(&flag, 1);
  return NULL;
}
static int spin_call;  // starve-call: waitpid instead of sched_yield

static void* spinner(void* a) {
  (void)a;
  long spins = 0;
  while (!atomic_load(&flag)) {
    if (spin_call) waitpid(-1, NULL, WNOHANG);
    else sched_yield();
    spins++;
  }
  fprintf(stderr, "spins %ld\n", spins);
  return NULL;
}

static int create_fifo(pthread_t* t, int prio, void* (*fn)(void*)) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&at, SCHED_FIFO);
  struct sched_param sp = {.sched_priority = prio};
  pthread_attr_setschedparam(&at, &sp);
  int e = pthread_create(t, &at, fn, (void*)(long)prio);
  pthread_attr_destroy(&at);
  return e;
}

static int scenario_order(void) {
  static const int prios[4] = {10, 30, 20, 40};
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    int e = create_fifo(&t[i], prios[i], ordered);
    if (e) {
      printf("create %d: %s\n", prios[i], strerror(e));
      return 1;
    }
  }
  pthread_mutex_lock(&gate_mu);
  while (arrived < 4) pthread_cond_wait(&arrived_cv, &gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&open_cv);
  pthread_mutex_unlock(&gate_mu);
  printf("passed the gate before main joined: %d\n", atomic_load(&log_n));
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("order:");
  for (int i = 0; i < atomic_load(&log_n) && i < 16; i++)
    printf(" %s%d", log_v[i] < 0 ? "end " : "start ", abs(log_v[i]));
  printf("\n");
  return 0;
}

static int scenario_yield(void) {
  pthread_t t;
  int e = create_fifo(&t, 10, yielder);
  if (e) {
    printf("create: %s\n", strerror(e));
    return 1;
  }
  int seen = atomic_load(&counter);
  pthread_join(t, NULL);
  printf("parent after create saw %s (%d of %d)\n",
         seen == kYieldSteps ? "the finished count"
         : seen == 0         ? "nothing"
                             : "a partial count",
         seen, kYieldSteps);
  fprintf(stderr, "seen %d\n", seen);
  return 0;
}

static int scenario_starve(void) {
  pthread_t s, t;
  int e = create_fifo(&s, 10, spinner);
  if (e) {
    printf("skipped: create SCHED_FIFO: %s\n", strerror(e));
    return 0;
  }
  pthread_create(&t, NULL, setter, NULL);
  pthread_join(t, NULL);
  pthread_join(s, NULL);
  printf("the spinner saw the ordinary thread's flag\n");
  return 0;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  alarm(10);
  const char* what = argc > 1 ? argv[1] : "order";
  if (strcmp(what, "starve") == 0) return scenario_starve();
  if (strcmp(what, "starve-call") == 0) {
    spin_call = 1;
    return scenario_starve();
  }
  int order = strcmp(what, "order") == 0;
  if (!order && strcmp(what, "yield") != 0) {
    fprintf(stderr, "usage: sched_fifo order|yield|starve|starve-call\n");
    return 2;
  }

  /* One CPU for the whole process: the first one it may use. */
  cpu_set_t mask, one;
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) {
    perror("sched_getaffinity");
    return 1;
  }
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &mask)) cpu++;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) {
    perror("sched_setaffinity");
    return 1;
  }

  struct sched_param sp = {.sched_priority = order ? 50 : 1};
  if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
    int e = errno;
    printf("skipped: sched_setscheduler SCHED_FIFO: %s\n", strerror(e == EPERM ? EPERM : e));
    return 0;
  }
  int r = order ? scenario_order() : scenario_yield();
  /* Back to normal before exit: the output is flushed without real-time
   * priority. */
  sp.sched_priority = 0;
  sched_setscheduler(0, SCHED_OTHER, &sp);
  return r;
}
