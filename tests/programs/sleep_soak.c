/* sleep_soak — a sleep must never end early (issue 8: one of 20,000 sleeps
 * ended before its deadline at MNP_PROCS=5, about once in 30 runs of a
 * 10-minute soak).
 *
 *   sleep_soak                 one round (the suite's case)
 *   sleep_soak long SECONDS    rounds until SECONDS have passed (by hand)
 *
 * A round: 1,000 threads each sleep 10 x nanosleep(10 ms), retried with the
 * time left on EINTR, and 10 x clock_nanosleep(TIMER_ABSTIME, now + 10 ms),
 * retried with the same deadline, alternately on CLOCK_MONOTONIC and
 * CLOCK_REALTIME: 20,000 sleeps. Meanwhile a thread sends SIGUSR1 to random
 * sleepers (pthread_kill, every 200 us) whose handler computes for about
 * 30 us, so sleeps are interrupted and retried, and a handler can run at
 * any point of a sleep's set-up. Each nanosleep must last at least 10 ms on
 * CLOCK_MONOTONIC from its first call to its last return; each absolute
 * sleep must return at or after its deadline on the clock it names.
 *
 * The interleaving that failed: clock_nanosleep(TIMER_ABSTIME) under the
 * shim turned the deadline into a CLOCK_MONOTONIC one by reading the
 * monotonic clock first and the named clock second, and adding the
 * difference to the first reading. Whatever delayed the thread between the
 * two reads (the kernel preempting the M, which 5 Ps on 2 CPUs make
 * likely, or a handler run there) was taken off the sleep: it ended that
 * much before its deadline. Here the handler widens that window.
 *
 * stdout: "sleeps=20000", "early=0", "sleep_soak: ok" (FAIL lines and exit
 * 1 otherwise); in long mode "runs=N sleeps=N early=N". */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 1000, kEach = 10, kSleepNs = 10 * 1000 * 1000 };

static pthread_t g_tids[kThreads];
static atomic_long g_sleeps, g_early, g_eintr, g_handled;
static atomic_int g_stop;

static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_usr1(int sig) {
  (void)sig;
  int saved = errno;
  int64_t end = now_ns(CLOCK_MONOTONIC) + 30000;
  while (now_ns(CLOCK_MONOTONIC) < end) {
  }
  atomic_fetch_add(&g_handled, 1);
  errno = saved;
}

static void early(const char* what, int64_t by) {
  atomic_fetch_add(&g_early, 1);
  fprintf(stderr, "sleep_soak: %s ended %lld ns early\n", what, (long long)by);
}

static void* sleeper(void* arg) {
  (void)arg;
  for (int i = 0; i < kEach; i++) {
    struct timespec req = {0, kSleepNs}, rem;
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    while (nanosleep(&req, &rem) != 0) {
      if (errno != EINTR) {
        printf("FAIL nanosleep: %s\n", strerror(errno));
        break;
      }
      atomic_fetch_add(&g_eintr, 1);
      req = rem;
    }
    int64_t el = now_ns(CLOCK_MONOTONIC) - t0;
    if (el < kSleepNs) early("nanosleep", kSleepNs - el);
    atomic_fetch_add(&g_sleeps, 1);

    clockid_t c = i % 2 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    int64_t dl = now_ns(c) + kSleepNs;
    struct timespec abs = {(time_t)(dl / 1000000000), (long)(dl % 1000000000)};
    int rc;
    while ((rc = clock_nanosleep(c, TIMER_ABSTIME, &abs, NULL)) != 0) {
      if (rc != EINTR) {
        printf("FAIL clock_nanosleep: %s\n", strerror(rc));
        break;
      }
      atomic_fetch_add(&g_eintr, 1);
    }
    int64_t now = now_ns(c);
    if (now < dl) early(c == CLOCK_REALTIME ? "clock_nanosleep REALTIME" : "clock_nanosleep MONOTONIC", dl - now);
    atomic_fetch_add(&g_sleeps, 1);
  }
  return NULL;
}

static void* signaller(void* arg) {
  (void)arg;
  unsigned seed = 12345;
  while (!atomic_load(&g_stop)) {
    struct timespec d = {0, 200000};
    nanosleep(&d, NULL);
    seed = seed * 1103515245 + 12345;
    pthread_kill(g_tids[(seed >> 8) % kThreads], SIGUSR1);
  }
  return NULL;
}

/* One round; returns the early sleeps it saw. */
static long round_once(void) {
  long before = atomic_load(&g_early);
  long target = atomic_load(&g_sleeps) + 2 * kEach * kThreads;
  atomic_store(&g_stop, 0);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 64 * 1024);
  for (int i = 0; i < kThreads; i++) {
    int rc = pthread_create(&g_tids[i], &at, sleeper, NULL);
    if (rc != 0) {
      printf("FAIL pthread_create: %s\n", strerror(rc));
      exit(1);
    }
  }
  pthread_t s;
  pthread_create(&s, &at, signaller, NULL);
  pthread_attr_destroy(&at);
  /* The signaller names sleepers until all have ended, never a joined one. */
  struct timespec d = {0, 5000000};
  while (atomic_load(&g_sleeps) < target) nanosleep(&d, NULL);
  atomic_store(&g_stop, 1);
  pthread_join(s, NULL);
  for (int i = 0; i < kThreads; i++) pthread_join(g_tids[i], NULL);
  return atomic_load(&g_early) - before;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  if (argc > 2 && strcmp(argv[1], "long") == 0) {
    int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)atoi(argv[2]) * 1000000000;
    long runs = 0, bad_runs = 0;
    while (now_ns(CLOCK_MONOTONIC) < end) {
      if (round_once()) bad_runs++;
      runs++;
    }
    printf("runs=%ld sleeps=%ld early=%ld runs_with_early=%ld eintr=%ld handled=%ld\n", runs, atomic_load(&g_sleeps),
           atomic_load(&g_early), bad_runs, atomic_load(&g_eintr), atomic_load(&g_handled));
    return atomic_load(&g_early) ? 1 : 0;
  }
  alarm(60); /* default action: a hang dies of SIGALRM */
  round_once();
  fprintf(stderr, "sleep_soak: eintr=%ld handled=%ld\n", atomic_load(&g_eintr), atomic_load(&g_handled));
  printf("sleeps=%ld\n", atomic_load(&g_sleeps));
  printf("early=%ld\n", atomic_load(&g_early));
  int ok = atomic_load(&g_sleeps) == 2 * kEach * kThreads && atomic_load(&g_early) == 0;
  printf("sleep_soak: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
