/* detach — detached threads run to completion and release themselves.
 *
 * 20 rounds; each round starts 100 threads of each kind:
 *   attr      created with PTHREAD_CREATE_DETACHED;
 *   after     pthread_detach(t) by main right after create (the thread may
 *             already have finished: still 0);
 *   self      the thread calls pthread_detach(pthread_self());
 *   nested    a detached thread that itself creates a detached thread.
 * Every thread adds a value to an atomic sum and bumps an atomic counter;
 * main waits for the round with sched_yield/usleep (no mutexes or condvars:
 * those come with a later issue), with a 60 s deadline.
 *
 * Fails when a detached thread never runs or runs twice (count or sum wrong),
 * a create/detach call fails, or the deadline passes.  MNP-CHECK
 * kthreads_max samples the kernel thread count in every 16th thread. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kRounds = 20, kPerKind = 100 };

static atomic_long g_done;
static atomic_long g_sum;
static atomic_int g_errors;
static pthread_attr_t g_detached;
static atomic_llong g_kthreads_max;

static long value_of(long n) { return (n * 7919) % 10007; }

static void* leaf(void* arg) {
  if ((long)(intptr_t)arg % 16 == 0) {
    long long k = mnp_kernel_threads();
    long long cur = atomic_load(&g_kthreads_max);
    while (k > cur && !atomic_compare_exchange_weak(&g_kthreads_max, &cur, k)) {
    }
  }
  atomic_fetch_add(&g_sum, value_of((long)(intptr_t)arg));
  atomic_fetch_add(&g_done, 1);
  return NULL;
}

static void* self_detacher(void* arg) {
  if (pthread_detach(pthread_self()) != 0) atomic_fetch_add(&g_errors, 1);
  return leaf(arg);
}

static void* nester(void* arg) {
  long n = (long)(intptr_t)arg;
  pthread_t t;
  if (pthread_create(&t, &g_detached, leaf, (void*)(intptr_t)(n + 1)) != 0) atomic_fetch_add(&g_errors, 1);
  return leaf(arg);
}

int main(void) {
  mnp_report_shim();
  pthread_attr_init(&g_detached);
  if (pthread_attr_setdetachstate(&g_detached, PTHREAD_CREATE_DETACHED) != 0) return 1;
  long expect_done = 0, expect_sum = 0, n = 0;
  double deadline = mnp_now() + 60;
  for (int r = 0; r < kRounds; r++) {
    for (int i = 0; i < kPerKind; i++) {
      pthread_t t;
      int rc;
      /* attr */
      rc = pthread_create(&t, &g_detached, leaf, (void*)(intptr_t)n);
      expect_sum += value_of(n++);
      if (rc != 0) atomic_fetch_add(&g_errors, 1);
      /* after */
      rc = pthread_create(&t, NULL, leaf, (void*)(intptr_t)n);
      expect_sum += value_of(n++);
      if (rc != 0 || pthread_detach(t) != 0) atomic_fetch_add(&g_errors, 1);
      /* self */
      rc = pthread_create(&t, NULL, self_detacher, (void*)(intptr_t)n);
      expect_sum += value_of(n++);
      if (rc != 0) atomic_fetch_add(&g_errors, 1);
      /* nested: the child uses n + 1 */
      rc = pthread_create(&t, &g_detached, nester, (void*)(intptr_t)n);
      expect_sum += value_of(n) + value_of(n + 1);
      n += 2;
      if (rc != 0) atomic_fetch_add(&g_errors, 1);
      expect_done += 5;
    }
    for (long spins = 0; atomic_load(&g_done) < expect_done; spins++) {
      if (mnp_now() > deadline) {
        fprintf(stderr, "detach: deadline passed in round %d: done=%ld of %ld\n", r, atomic_load(&g_done), expect_done);
        return 1;
      }
      if (spins % 64 == 63) usleep(100);
      else sched_yield();
    }
  }
  long done = atomic_load(&g_done), sum = atomic_load(&g_sum);
  int errors = atomic_load(&g_errors);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("detach: threads=%ld done=%ld sum=%ld expected=%ld errors=%d\n", expect_done, done, sum, expect_sum, errors);
  return (done == expect_done && sum == expect_sum && errors == 0) ? 0 : 1;
}
