/* sleepers_10k — 10,000 threads each sleep 1 ms ten times.
 *
 * Even-numbered threads use usleep(1000), odd ones nanosleep({0, 1 ms});
 * every completed sleep is counted, and a sleep that returns early (measured
 * with CLOCK_MONOTONIC, < 1 ms) or with an error is counted separately.  All
 * threads start at once behind a gate (a mutex + condvar), so 10,000 sleepers
 * are pending together: under the shim sleeping Gs must park rather than hold
 * kernel threads (MNP-CHECK kthreads_max, sampled by every 64th thread after
 * its first sleep; ~10,001 natively).
 *
 * Failure: done != 100,000, a short or failed sleep, or a very long run (a
 * runtime that blocks a kernel thread per sleeper serializes 10,000 x 10 ms). */
#include <pthread.h>
#include <stdint.h>

#include "sync_util.h"

enum { kThreads = 10000, kSleeps = 10 };

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open; /* guarded by gate_mu */
static atomic_long done, short_sleeps, errors;

static void* sleeper(void* arg) {
  long id = (long)(intptr_t)arg;
  pthread_mutex_lock(&gate_mu);
  while (!gate_open) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  for (int i = 0; i < kSleeps; i++) {
    double t0 = mono_now();
    int rc;
    if (id % 2 == 0) {
      rc = usleep(1000);
    } else {
      struct timespec ts = {0, 1000000L};
      rc = nanosleep(&ts, NULL);
    }
    if (rc != 0) atomic_fetch_add(&errors, 1);
    if (mono_now() - t0 < 0.00099) atomic_fetch_add(&short_sleeps, 1);
    atomic_fetch_add(&done, 1);
    if (i == 0 && id % 64 == 0) kthreads_sample();
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  static pthread_t t[kThreads];
  int created = 0;
  for (int i = 0; i < kThreads; i++) {
    if (pthread_create(&t[i], NULL, sleeper, (void*)(intptr_t)i) != 0) {
      printf("FAIL pthread_create %d\n", i);
      atomic_fetch_add(&g_failures, 1);
      break;
    }
    created++;
  }
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
  for (int i = 0; i < created; i++) pthread_join(t[i], NULL);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("sleepers_10k: done=%ld expected=%ld short=%ld errors=%ld\n", atomic_load(&done), (long)kThreads * kSleeps,
         atomic_load(&short_sleeps), atomic_load(&errors));
  SYNC_CHECK(atomic_load(&done) == (long)kThreads * kSleeps && atomic_load(&short_sleeps) == 0 &&
             atomic_load(&errors) == 0);
  return sync_finish("sleepers_10k");
}
