/* io_waitpid — a thread waits for a child process while other threads run.
 *
 * Three rounds, one per call: waitpid(pid, &st, 0), wait(&st) and
 * waitid(P_PID, pid, &info, WEXITED).  In each, a thread forks a child that
 * sleeps 200 ms and exits with 7, 8 or 9, and waits for it; meanwhile a
 * counter thread spins (a call-free loop) and 4 sleeper threads loop on
 * usleep(1000).  The wait must return that child with that exit status, and
 * the others must have made progress during the wait: MNP-CHECK
 * counter_progress=1 when the counter advanced in every round,
 * sleepers_progress=1 when every sleeper did at least 5 iterations in every
 * round (about 180 natively).  Under the shim the waiting thread's P must be
 * handed off, or at MNP_PROCS=1 nothing else runs for 200 ms.
 *
 * Failure: "not ok" and a FAIL line, exit 1 (wrong pid or status, a
 * starved thread), or a hang (runner timeout). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kSleepers = 4, kMinSleeperIters = 5 };

static atomic_int g_stop;
static atomic_llong g_counter;
static atomic_llong g_sleeper_iters[kSleepers];

static void* counter(void* arg) {
  (void)arg;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed))
    atomic_fetch_add_explicit(&g_counter, 1, memory_order_relaxed);
  return NULL;
}

static void* sleeper(void* arg) {
  long i = (long)arg;
  while (!atomic_load(&g_stop)) {
    usleep(1000);
    atomic_fetch_add(&g_sleeper_iters[i], 1);
  }
  return NULL;
}

enum Call { kWaitpid, kWait, kWaitid };
static const char* const call_name[] = {"waitpid", "wait", "waitid"};

struct Round {
  enum Call call;
  int code; /* the child's exit code */
  int ok;
  char detail[128];
};

static void* waiter(void* arg) {
  struct Round* r = arg;
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(r->detail, sizeof r->detail, "fork: %s", strerror(errno));
    return NULL;
  }
  if (pid == 0) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    _exit(r->code);
  }
  if (r->call == kWaitid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rv = waitid(P_PID, pid, &info, WEXITED);
    r->ok = rv == 0 && info.si_pid == pid && info.si_code == CLD_EXITED && info.si_status == r->code;
    snprintf(r->detail, sizeof r->detail, "rv %d errno %d si_pid %d (child %d) si_code %d si_status %d", rv,
             rv ? errno : 0, info.si_pid, pid, info.si_code, info.si_status);
  } else {
    int st = -1;
    pid_t got = r->call == kWaitpid ? waitpid(pid, &st, 0) : wait(&st);
    r->ok = got == pid && WIFEXITED(st) && WEXITSTATUS(st) == r->code;
    snprintf(r->detail, sizeof r->detail, "returned %d errno %d (child %d), status 0x%x", got, got < 0 ? errno : 0, pid,
             st);
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_t cnt, sl[kSleepers];
  pthread_create(&cnt, NULL, counter, NULL);
  for (long i = 0; i < kSleepers; i++) pthread_create(&sl[i], NULL, sleeper, (void*)i);
  usleep(10 * 1000);

  int failures = 0, counter_progress = 1, sleepers_progress = 1;
  long long sleeper_min = -1;
  for (int c = kWaitpid; c <= kWaitid; c++) {
    struct Round r = {(enum Call)c, 7 + c, 0, "thread not run"};
    long long c0 = atomic_load(&g_counter), s0[kSleepers];
    for (int i = 0; i < kSleepers; i++) s0[i] = atomic_load(&g_sleeper_iters[i]);
    pthread_t w;
    pthread_create(&w, NULL, waiter, &r);
    pthread_join(w, NULL);
    long long c1 = atomic_load(&g_counter);
    if (c1 <= c0) counter_progress = 0;
    for (int i = 0; i < kSleepers; i++) {
      long long d = atomic_load(&g_sleeper_iters[i]) - s0[i];
      if (sleeper_min < 0 || d < sleeper_min) sleeper_min = d;
      if (d < kMinSleeperIters) sleepers_progress = 0;
    }
    printf("%s: child exited with %d: %s\n", call_name[c], r.code, r.ok ? "ok" : "not ok");
    if (!r.ok) {
      fprintf(stderr, "FAIL %s: %s\n", call_name[c], r.detail);
      failures++;
    }
  }
  atomic_store(&g_stop, 1);
  pthread_join(cnt, NULL);
  for (int i = 0; i < kSleepers; i++) pthread_join(sl[i], NULL);

  mnp_check("counter_progress", counter_progress);
  mnp_check("sleepers_progress", sleepers_progress);
  mnp_check("sleeper_min_iters", sleeper_min);
  if (!counter_progress) fprintf(stderr, "FAIL the counter thread did not advance during a wait\n");
  if (!sleepers_progress)
    fprintf(stderr, "FAIL a sleeper did %lld iterations during a wait (want >= %d)\n", sleeper_min, kMinSleeperIters);
  printf("failures: %d\n", failures);
  return (failures == 0 && counter_progress && sleepers_progress) ? 0 : 1;
}
