/* malloc_barrier — 5,000 threads churn malloc/free, then meet twice at one
 * barrier of count 5,001 (main is the last member).
 *
 * Regression (issue 8, item 6.1): glibc's malloc arena locks are futexes
 * the shim does not wrap. A thread that sleeps on one has its M found
 * blocked by sysmon, which takes its P away; the thread then runs on
 * without a P until its next scheduling point. When that point was
 * pthread_barrier_wait, sema_wait took its wait-table bucket lock and only
 * then, inside park(), took a P back: none was free, so the thread was
 * queued as runnable with the bucket lock still held, and the Ms that ran
 * the next arrivals spun, then slept in the kernel, on that lock: the
 * process hung with thousands of runnable threads queued.
 *
 * Each thread: 20 rounds of 64 blocks of 16..1,016 bytes (written, then
 * freed), then two barrier waits. Checks: exactly one serial thread per
 * barrier generation, every block's contents intact. A watchdog (alarm)
 * reports a hang and exits 3 instead of letting the runner time out.
 * MNP-CHECK kthreads_max: natively ~5,001, under the shim procs + a few. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync_util.h"

enum { kThreads = 5000, kRounds = 20, kBlocks = 64, kWatchdogSeconds = 40 };

static pthread_barrier_t g_barrier;
static atomic_int g_serial[2];
static atomic_int g_corrupt;
static atomic_int g_passed[2];
static volatile sig_atomic_t g_phase;

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "malloc_barrier: watchdog: hang, phase ";
  char c[3] = {(char)('0' + g_phase), '\n', 0};
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, c, 2);
  _exit(3);
}

static void* churn(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  void* blocks[kBlocks];
  size_t sizes[kBlocks];
  for (int r = 0; r < kRounds; r++) {
    for (int i = 0; i < kBlocks; i++) {
      seed = seed * 1103515245u + 12345u;
      sizes[i] = 16 + (seed >> 8) % 1001;
      blocks[i] = malloc(sizes[i]);
      memset(blocks[i], (int)(i & 0xff), sizes[i]);
    }
    for (int i = 0; i < kBlocks; i++) {
      const unsigned char* p = blocks[i];
      if (p[0] != (i & 0xff) || p[sizes[i] - 1] != (i & 0xff)) atomic_fetch_add(&g_corrupt, 1);
      free(blocks[i]);
    }
  }
  for (int k = 0; k < 2; k++) {
    int rc = pthread_barrier_wait(&g_barrier);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&g_serial[k], 1);
    atomic_fetch_add(&g_passed[k], 1);
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  signal(SIGALRM, watchdog);
  alarm(kWatchdogSeconds);
  SYNC_CHECK(pthread_barrier_init(&g_barrier, NULL, kThreads + 1) == 0);
  static pthread_t t[kThreads];
  g_phase = 1;
  for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, churn, (void*)(uintptr_t)i) == 0);
  kthreads_sample();
  for (int k = 0; k < 2; k++) {
    g_phase = 2 + k;
    int rc = pthread_barrier_wait(&g_barrier);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&g_serial[k], 1);
    atomic_fetch_add(&g_passed[k], 1);
  }
  g_phase = 4;
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  alarm(0);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  for (int k = 0; k < 2; k++) {
    printf("barrier %d: passed=%d serial=%d\n", k + 1, atomic_load(&g_passed[k]), atomic_load(&g_serial[k]));
    SYNC_CHECK(atomic_load(&g_passed[k]) == kThreads + 1 && atomic_load(&g_serial[k]) == 1);
  }
  printf("corrupt=%d\n", atomic_load(&g_corrupt));
  SYNC_CHECK(atomic_load(&g_corrupt) == 0);
  return sync_finish("malloc_barrier");
}
