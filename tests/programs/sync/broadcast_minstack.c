/* broadcast_minstack — condvar broadcasts to threads whose stacks are
 * PTHREAD_STACK_MIN bytes.
 *
 * Regression (issue 8, item 6.2): 1,000 threads on minimum-size stacks
 * waiting on one condvar, woken by pthread_cond_broadcast, hung with every
 * kernel thread in a futex wait. Each wait and wake-up runs the runtime's
 * own frames (sema_wait, park, the switch, sysmon's signal frame) on the
 * waiting thread's small stack, and a waiter may lose its P to sysmon on
 * the mutex's way in and out, so the broadcast is taken at counts 10, 100
 * and 1,000, several generations each.
 *
 * Each thread of a round: announce arrival under the mutex (the last one
 * signals main), wait on the shared condvar until main publishes the
 * generation, touch a little of its stack, count the wake-up. A watchdog
 * (alarm) reports a hang and exits 3 instead of letting the runner time
 * out. MNP-CHECK kthreads_max: natively ~1,001, under the shim procs + a few. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sync_util.h"

enum { kGenerations = 4, kWatchdogSeconds = 40 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gen_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER;
static int nthreads;                  /* this round's count (set before creation) */
static int generation;                /* mu */
static int arrived[kGenerations + 1]; /* mu */
static int woke[kGenerations + 1];    /* mu */
static int ahead;                     /* mu */
static volatile sig_atomic_t g_round;

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "broadcast_minstack: watchdog: hang in round ";
  char c[3] = {(char)('0' + g_round), '\n', 0};
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, c, 2);
  _exit(3);
}

static void* waiter(void* arg) {
  (void)arg;
  volatile char scratch[512];
  for (int g = 1; g <= kGenerations; g++) {
    pthread_mutex_lock(&mu);
    if (++arrived[g] == nthreads) pthread_cond_signal(&main_cv);
    while (generation < g) pthread_cond_wait(&gen_cv, &mu);
    if (generation != g) ahead++;
    woke[g]++;
    pthread_mutex_unlock(&mu);
    memset((char*)scratch, g, sizeof scratch);
  }
  return NULL;
}

static void round_of(int n) {
  static pthread_t t[1000];
  pthread_attr_t attr;
  SYNC_CHECK(pthread_attr_init(&attr) == 0);
  SYNC_CHECK(pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN) == 0);
  nthreads = n;
  generation = 0;
  memset(arrived, 0, sizeof arrived);
  memset(woke, 0, sizeof woke);
  for (int i = 0; i < n; i++) SYNC_CHECK(pthread_create(&t[i], &attr, waiter, NULL) == 0);
  for (int g = 1; g <= kGenerations; g++) {
    pthread_mutex_lock(&mu);
    while (arrived[g] < n) pthread_cond_wait(&main_cv, &mu);
    if (g == 1) kthreads_sample();
    generation = g;
    pthread_cond_broadcast(&gen_cv);
    pthread_mutex_unlock(&mu);
  }
  for (int i = 0; i < n; i++) SYNC_CHECK(pthread_join(t[i], NULL) == 0);
  pthread_attr_destroy(&attr);
  int ok = 1;
  for (int g = 1; g <= kGenerations; g++) ok &= arrived[g] == n && woke[g] == n;
  printf("threads=%d generations=%d all woken=%s\n", n, kGenerations, ok ? "yes" : "no");
  SYNC_CHECK(ok);
}

int main(void) {
  mnp_report_shim();
  signal(SIGALRM, watchdog);
  alarm(kWatchdogSeconds);
  const int counts[] = {10, 100, 1000};
  for (int r = 0; r < 3; r++) {
    g_round = r + 1;
    for (int k = 0; k < 3; k++) round_of(counts[r]);
  }
  alarm(0);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("ahead=%d\n", ahead);
  SYNC_CHECK(ahead == 0);
  return sync_finish("broadcast_minstack");
}
