/* broadcast1000 — one condvar broadcast wakes 1,000 waiters, 5 times over.
 *
 * 1,000 threads loop over generations 1..5: each announces its arrival under
 * the mutex (the last one signals main on a second condvar) and waits on the
 * shared condvar until main publishes that generation, then records that it
 * woke.  Main waits for all arrivals, sets the generation and broadcasts once.
 * Main samples the kernel thread count when all 1,000 are waiting in
 * generation 1 (MNP-CHECK kthreads_max: natively ~1,001, under the shim at most
 * MNP_PROCS plus a few).
 *
 * Failure: a thread that is not woken by the broadcast (hang), a thread that
 * runs ahead of the published generation (wrong woke count), or wrong totals. */
#include <pthread.h>

#include "sync_util.h"

enum { kThreads = 1000, kGenerations = 5 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gen_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER;
static int generation;                /* guarded by mu: the last published one */
static int arrived[kGenerations + 1]; /* guarded by mu */
static int woke[kGenerations + 1];    /* guarded by mu */
static int ahead;                     /* guarded by mu: woke before publication */

static void* waiter(void* arg) {
  (void)arg;
  for (int g = 1; g <= kGenerations; g++) {
    pthread_mutex_lock(&mu);
    if (++arrived[g] == kThreads) pthread_cond_signal(&main_cv);
    while (generation < g) pthread_cond_wait(&gen_cv, &mu);
    if (generation != g) ahead++; /* main cannot publish g+1 before we arrive at g+1 */
    woke[g]++;
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  static pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, waiter, NULL) == 0);
  for (int g = 1; g <= kGenerations; g++) {
    pthread_mutex_lock(&mu);
    while (arrived[g] < kThreads) pthread_cond_wait(&main_cv, &mu);
    if (g == 1) kthreads_sample();
    generation = g;
    pthread_cond_broadcast(&gen_cv);
    pthread_mutex_unlock(&mu);
  }
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  for (int g = 1; g <= kGenerations; g++) {
    printf("generation %d: arrived=%d woke=%d\n", g, arrived[g], woke[g]);
    SYNC_CHECK(arrived[g] == kThreads && woke[g] == kThreads);
  }
  printf("ahead=%d\n", ahead);
  SYNC_CHECK(ahead == 0);
  return sync_finish("broadcast1000");
}
