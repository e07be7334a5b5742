/* barrier — pthread_barrier_wait releases whole generations, one serial each.
 *
 * 16 threads pass one barrier 1,000 times.  Before each wait a thread counts
 * its arrival for that generation; after the wait it checks that all 16 have
 * arrived (no thread is released early) and that nobody has yet arrived two
 * generations ahead; PTHREAD_BARRIER_SERIAL_THREAD is counted per generation
 * and must be returned to exactly one thread each time.  Also: init with
 * count 0 (EINVAL), count 1 (every wait is serial), destroy (0).
 *
 * Failure: early release (early=N), a generation with 0 or 2+ serial threads
 * (bad_generations=N), a wait result other than 0 / SERIAL, or a hang. */
#include <pthread.h>

#include "sync_util.h"

enum { kThreads = 16, kGenerations = 1000 };

static pthread_barrier_t g_barrier;
static atomic_int g_arrived[kGenerations + 2];
static atomic_int g_serial[kGenerations];
static atomic_long g_early, g_bad_rc;

static void* runner(void* arg) {
  (void)arg;
  for (int g = 0; g < kGenerations; g++) {
    atomic_fetch_add(&g_arrived[g], 1);
    int rc = pthread_barrier_wait(&g_barrier);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&g_serial[g], 1);
    else if (rc != 0) atomic_fetch_add(&g_bad_rc, 1);
    if (atomic_load(&g_arrived[g]) != kThreads) atomic_fetch_add(&g_early, 1);
    if (atomic_load(&g_arrived[g + 2]) != 0) atomic_fetch_add(&g_early, 1);
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_barrier_t b;
  expect_err("init_count_0", pthread_barrier_init(&b, NULL, 0), EINVAL);
  expect_err("init_count_1", pthread_barrier_init(&b, NULL, 1), 0);
  int serial1 = 0;
  for (int i = 0; i < 3; i++) serial1 += pthread_barrier_wait(&b) == PTHREAD_BARRIER_SERIAL_THREAD;
  printf("count_1_serial_waits=%d\n", serial1);
  SYNC_CHECK(serial1 == 3);
  expect_err("destroy_count_1", pthread_barrier_destroy(&b), 0);

  SYNC_CHECK(pthread_barrier_init(&g_barrier, NULL, kThreads) == 0);
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, runner, NULL) == 0);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  int bad_generations = 0;
  long serial_total = 0;
  for (int g = 0; g < kGenerations; g++) {
    int s = atomic_load(&g_serial[g]);
    serial_total += s;
    if (s != 1) bad_generations++;
  }
  printf("barrier: threads=%d generations=%d serial_total=%ld bad_generations=%d early=%ld bad_rc=%ld\n", kThreads,
         kGenerations, serial_total, bad_generations, atomic_load(&g_early), atomic_load(&g_bad_rc));
  SYNC_CHECK(serial_total == kGenerations && bad_generations == 0 && atomic_load(&g_early) == 0 &&
             atomic_load(&g_bad_rc) == 0);
  expect_err("destroy", pthread_barrier_destroy(&g_barrier), 0);
  return sync_finish("barrier");
}
