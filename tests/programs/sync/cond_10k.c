/* cond_10k — 10,000 threads wait on one condvar; one broadcast wakes them all.
 *
 * Each thread locks the mutex, counts itself as waiting (the last one signals
 * main), and waits until main sets `go`; then it counts itself as woken.  Main
 * samples the kernel thread count once all 10,000 are waiting: MNP-CHECK
 * kthreads_max is ~10,001 natively and must be at most MNP_PROCS + 4 under the
 * shim (parked Gs hold no kernel thread).
 *
 * Failure: a hang (a waiter never woken, or main never signalled) or a woken
 * count other than 10,000. */
#include <pthread.h>

#include "sync_util.h"

enum { kThreads = 10000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER;
static int waiting, woken, go; /* guarded by mu */

static void* waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  if (++waiting == kThreads) pthread_cond_signal(&main_cv);
  while (!go) pthread_cond_wait(&cv, &mu);
  woken++;
  pthread_mutex_unlock(&mu);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  static pthread_t t[kThreads];
  int created = 0;
  for (int i = 0; i < kThreads; i++) {
    if (pthread_create(&t[i], NULL, waiter, NULL) != 0) {
      printf("FAIL pthread_create %d\n", i);
      atomic_fetch_add(&g_failures, 1);
      break;
    }
    created++;
  }
  pthread_mutex_lock(&mu);
  while (created == kThreads && waiting < kThreads) pthread_cond_wait(&main_cv, &mu);
  kthreads_sample();
  go = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < created; i++) pthread_join(t[i], NULL);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("cond_10k: waiting=%d woken=%d\n", waiting, woken);
  SYNC_CHECK(waiting == kThreads && woken == kThreads);
  return sync_finish("cond_10k");
}
