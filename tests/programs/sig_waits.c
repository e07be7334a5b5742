/* sig_waits — a handler reaches a thread parked in any runtime wait, runs
 * on it, and the wait then behaves as glibc's does natively (issue 8).
 *
 * Interleavings this reproduces. Under the shim these threads are Gs parked
 * in the runtime's wait table, not kernel threads in futex(2):
 *   (a) a waiter in sem_wait/sem_timedwait/sem_clockwait or
 *       syscall(SYS_futex, FUTEX_WAIT[_BITSET]) gets a handler, sent with
 *       pthread_kill or with kill(getpid()) while every other thread blocks
 *       the signal. Natively the kernel ends the futex wait: with EINTR if
 *       the wait is timed (-ERESTART_RESTARTBLOCK) or the handler lacks
 *       SA_RESTART (-ERESTARTSYS), else the call is restarted. Under the
 *       shim the handler ran but the wait always went on (CPython's
 *       interruptible lock acquire waited out its whole timeout), and a
 *       kill(getpid()) reached the waiter only as a spurious wake-up.
 *   (b) a waiter in pthread_mutex_lock/timedlock, pthread_cond_wait/
 *       timedwait, pthread_rwlock_rdlock/wrlock, pthread_barrier_wait,
 *       pthread_join/timedjoin_np or pthread_once gets a handler the same
 *       two ways: it must run on the waiter while it waits, and the wait
 *       must go on and complete normally when released (natively glibc
 *       loops around the futex). Under the shim the handler of a joiner
 *       did not run until the join was over.
 *   (c) 200 kill(getpid(), SIGUSR1), one at a time, each waited for, while
 *       main blocks SIGUSR1 and other threads are parked in assorted waits
 *       or running: every kill runs the handler exactly once.
 * Timing is only bounded (a handler that has not run after 5 s counts as
 * not run); the longest waits for a handler go to stderr. stdout: fixed
 * lines. SIGALRM after 120 s (default action) ends a hung run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static __thread int t_waiter;
static atomic_int g_hits, g_hits_waiter;
static atomic_int g_ready;    /* the waiter is about to wait */
static atomic_int g_wtid;     /* its thread id */
static atomic_int g_returned; /* the waiter's call returned */
static long long g_max_latency_us;

static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&g_hits, 1);
  if (t_waiter) atomic_fetch_add(&g_hits_waiter, 1);
}

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static struct timespec in_seconds(clockid_t clk, int s) {
  struct timespec t;
  clock_gettime(clk, &t);
  t.tv_sec += s;
  return t;
}

static void block_usr1(int how) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(how, &s, NULL);
}

static void set_handler(int restart) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
}

/* Until the waiter sleeps: natively its task state is S; under the shim
 * its id names no kernel task, and a short sleep lets the G park. */
static void until_parked(void) {
  while (!atomic_load(&g_ready)) usleep(1000);
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", atomic_load(&g_wtid));
  for (int i = 0; i < 2000; i++) {
    if (mnp_read_small_file(path, buf, sizeof buf) < 0) break;
    const char* p = strrchr(buf, ')');
    if (p && p[1] == ' ' && p[2] == 'S') break;
    usleep(1000);
  }
  usleep(30000);
}

/* Sends SIGUSR1 to the waiter (or to the process, main blocking it) and
 * waits up to 5 s for the handler to run. */
static void signal_waiter(pthread_t w, int by_kill) {
  long long t0 = now_us();
  if (by_kill) {
    block_usr1(SIG_BLOCK);
    kill(getpid(), SIGUSR1);
  } else {
    pthread_kill(w, SIGUSR1);
  }
  while (atomic_load(&g_hits) == 0 && now_us() - t0 < 5000000) usleep(200);
  long long lat = now_us() - t0;
  if (lat > g_max_latency_us) g_max_latency_us = lat;
  usleep(20000); /* a second run, or an early return, would show by now */
  if (by_kill) block_usr1(SIG_UNBLOCK);
}

static void begin_run(void) {
  atomic_store(&g_hits, 0);
  atomic_store(&g_hits_waiter, 0);
  atomic_store(&g_ready, 0);
  atomic_store(&g_returned, 0);
}

static void waiter_start(void) {
  t_waiter = 1;
  atomic_store(&g_wtid, (int)gettid());
  atomic_store(&g_ready, 1);
}

/* ---- (a) waits the kernel ends with EINTR ---------------------------------- */

enum { kSemWait, kSemTimed, kSemClock, kFutex, kFutexRel, kFutexBitsetAbs, kFutexBitset, kIntrKinds };
static const char* const kIntrNames[kIntrKinds] = {"sem_wait",       "sem_timedwait",    "sem_clockwait", "futex_wait",
                                                   "futex_wait_rel", "futex_bitset_abs", "futex_bitset"};
static sem_t g_sem;
static atomic_uint g_fword;
static int g_kind, g_res, g_err;

static void* intr_waiter(void* a) {
  (void)a;
  struct timespec rt = in_seconds(CLOCK_REALTIME, 30), mt = in_seconds(CLOCK_MONOTONIC, 30), rel = {30, 0};
  waiter_start();
  long r = 0;
  switch (g_kind) {
    case kSemWait:
      r = sem_wait(&g_sem);
      break;
    case kSemTimed:
      r = sem_timedwait(&g_sem, &rt);
      break;
    case kSemClock:
      r = sem_clockwait(&g_sem, CLOCK_MONOTONIC, &mt);
      break;
    case kFutex:
      r = syscall(SYS_futex, &g_fword, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
      break;
    case kFutexRel:
      r = syscall(SYS_futex, &g_fword, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
      break;
    case kFutexBitsetAbs:
      r = syscall(SYS_futex, &g_fword, FUTEX_WAIT_BITSET_PRIVATE, 0, &mt, NULL, ~0u);
      break;
    case kFutexBitset:
      r = syscall(SYS_futex, &g_fword, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, ~0u);
      break;
  }
  g_err = errno;
  g_res = (int)r;
  atomic_store(&g_returned, 1);
  return NULL;
}

static void part_a(void) {
  for (int by_kill = 0; by_kill < 2; by_kill++)
    for (int restart = 0; restart < 2; restart++)
      for (g_kind = 0; g_kind < kIntrKinds; g_kind++) {
        set_handler(restart);
        begin_run();
        sem_init(&g_sem, 0, 0);
        atomic_store(&g_fword, 0);
        pthread_t w;
        pthread_create(&w, NULL, intr_waiter, NULL);
        until_parked();
        signal_waiter(w, by_kill);
        int on_waiter = atomic_load(&g_hits_waiter);
        /* A restarted wait ends when released. */
        sem_post(&g_sem);
        atomic_store(&g_fword, 1);
        syscall(SYS_futex, &g_fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        pthread_join(w, NULL);
        sem_destroy(&g_sem);
        printf("(a) %-16s %-11s restart=%d: handler on waiter %d, result %s\n", kIntrNames[g_kind],
               by_kill ? "kill" : "pthread_kill", restart, on_waiter,
               g_res == 0       ? "0"
               : g_err == EINTR ? "EINTR"
                                : strerror(g_err));
      }
}

/* ---- (b) waits that go on waiting ---------------------------------------- */

enum { kMutex, kMutexTimed, kCond, kCondTimed, kRdlock, kWrlock, kBarrier, kJoin, kTimedJoin, kOnce, kWaitKinds };
static const char* const kWaitNames[kWaitKinds] = {
    "mutex_lock",    "mutex_timedlock", "cond_wait", "cond_timedwait", "rwlock_rdlock",
    "rwlock_wrlock", "barrier_wait",    "join",      "timedjoin_np",   "once"};
static pthread_mutex_t g_mu;
static pthread_cond_t g_cv;
static int g_pred;
static pthread_rwlock_t g_rw;
static pthread_barrier_t g_bar;
static pthread_once_t g_once;
static sem_t g_gate, g_started;
static pthread_t g_target;
static int g_once_runs;

/* Joined or initialising, with SIGUSR1 blocked: the signal is the waiter's. */
static void* gated(void* a) {
  block_usr1(SIG_BLOCK);
  if (a) sem_post(&g_started);
  while (sem_wait(&g_gate) != 0) {
  }
  return (void*)42L;
}
static void init_gated(void) {
  g_once_runs++;
  gated((void*)1L);
}
static void init_other(void) { g_once_runs++; }
static void* once_runner(void* a) {
  (void)a;
  block_usr1(SIG_BLOCK);
  pthread_once(&g_once, init_gated);
  return NULL;
}

static void* wait_waiter(void* a) {
  (void)a;
  struct timespec rt = in_seconds(CLOCK_REALTIME, 30);
  void* v = NULL;
  waiter_start();
  int r = 0;
  switch (g_kind) {
    case kMutex:
      r = pthread_mutex_lock(&g_mu);
      pthread_mutex_unlock(&g_mu);
      break;
    case kMutexTimed:
      r = pthread_mutex_timedlock(&g_mu, &rt);
      pthread_mutex_unlock(&g_mu);
      break;
    case kCond:
    case kCondTimed:
      pthread_mutex_lock(&g_mu);
      r = g_kind == kCond ? pthread_cond_wait(&g_cv, &g_mu) : pthread_cond_timedwait(&g_cv, &g_mu, &rt);
      if (r == 0 && !g_pred) r = -1; /* returned before it was signalled */
      pthread_mutex_unlock(&g_mu);
      break;
    case kRdlock:
      r = pthread_rwlock_rdlock(&g_rw);
      pthread_rwlock_unlock(&g_rw);
      break;
    case kWrlock:
      r = pthread_rwlock_wrlock(&g_rw);
      pthread_rwlock_unlock(&g_rw);
      break;
    case kBarrier:
      r = pthread_barrier_wait(&g_bar);
      break;
    case kJoin:
      r = pthread_join(g_target, &v);
      if (v != (void*)42L) r = -2;
      break;
    case kTimedJoin:
      r = pthread_timedjoin_np(g_target, &v, &rt);
      if (v != (void*)42L) r = -2;
      break;
    case kOnce:
      r = pthread_once(&g_once, init_other);
      break;
  }
  atomic_store(&g_returned, 1);
  return (void*)(long)r;
}

static void part_b(void) {
  set_handler(0);
  for (int by_kill = 0; by_kill < 2; by_kill++)
    for (g_kind = 0; g_kind < kWaitKinds; g_kind++) {
      begin_run();
      pthread_mutex_init(&g_mu, NULL);
      pthread_cond_init(&g_cv, NULL);
      pthread_rwlock_init(&g_rw, NULL);
      pthread_barrier_init(&g_bar, NULL, 2);
      sem_init(&g_gate, 0, 0);
      sem_init(&g_started, 0, 0);
      g_pred = 0;
      g_once = PTHREAD_ONCE_INIT;
      g_once_runs = 0;
      pthread_t helper = 0;
      /* Hold what the waiter will wait for. */
      if (g_kind == kMutex || g_kind == kMutexTimed) pthread_mutex_lock(&g_mu);
      if (g_kind == kRdlock || g_kind == kWrlock) pthread_rwlock_wrlock(&g_rw);
      if (g_kind == kJoin || g_kind == kTimedJoin) {
        pthread_create(&g_target, NULL, gated, (void*)1L);
        while (sem_wait(&g_started) != 0) {
        }
      }
      if (g_kind == kOnce) {
        pthread_create(&helper, NULL, once_runner, NULL);
        while (sem_wait(&g_started) != 0) {
        }
      }
      pthread_t w;
      pthread_create(&w, NULL, wait_waiter, NULL);
      until_parked();
      signal_waiter(w, by_kill);
      int early = atomic_load(&g_returned), on_waiter = atomic_load(&g_hits_waiter);
      int serial = 0;
      /* Release it. */
      switch (g_kind) {
        case kMutex:
        case kMutexTimed:
          pthread_mutex_unlock(&g_mu);
          break;
        case kCond:
        case kCondTimed:
          pthread_mutex_lock(&g_mu);
          g_pred = 1;
          pthread_cond_signal(&g_cv);
          pthread_mutex_unlock(&g_mu);
          break;
        case kRdlock:
        case kWrlock:
          pthread_rwlock_unlock(&g_rw);
          break;
        case kBarrier:
          serial += pthread_barrier_wait(&g_bar) == PTHREAD_BARRIER_SERIAL_THREAD;
          break;
        case kJoin:
        case kTimedJoin:
        case kOnce:
          sem_post(&g_gate);
          break;
      }
      void* v;
      pthread_join(w, &v);
      if (helper) pthread_join(helper, NULL);
      int r = (int)(long)v;
      if (g_kind == kBarrier) {
        serial += r == PTHREAD_BARRIER_SERIAL_THREAD;
        r = (r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD) && serial == 1 ? 0 : -3;
      }
      if (g_kind == kOnce && g_once_runs != 1) r = -4;
      printf("(b) %-16s %-11s: handler on waiter %d, returned early %d, result %d\n", kWaitNames[g_kind],
             by_kill ? "kill" : "pthread_kill", on_waiter, early, r);
      pthread_barrier_destroy(&g_bar);
      sem_destroy(&g_gate);
      sem_destroy(&g_started);
    }
}

/* ---- (c) one kill, one handler run ----------------------------------------- */

static atomic_int g_stop;
static atomic_uint g_cword;
static int g_pipe[2];
static pthread_mutex_t g_cmu = PTHREAD_MUTEX_INITIALIZER, g_hold = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ccv = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t g_crw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t g_csem;

static void* c_sem(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) sem_wait(&g_csem);
  return NULL;
}
static void* c_cond(void* a) {
  (void)a;
  pthread_mutex_lock(&g_cmu);
  while (!atomic_load(&g_stop)) pthread_cond_wait(&g_ccv, &g_cmu);
  pthread_mutex_unlock(&g_cmu);
  return NULL;
}
static void* c_futex(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) syscall(SYS_futex, &g_cword, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  return NULL;
}
static void* c_sleep(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) usleep(3000);
  return NULL;
}
static void* c_read(void* a) {
  (void)a;
  char c;
  while (!atomic_load(&g_stop)) (void)!read(g_pipe[0], &c, 1);
  return NULL;
}
static void* c_mutex(void* a) {
  (void)a;
  pthread_mutex_lock(&g_hold);
  pthread_mutex_unlock(&g_hold);
  return NULL;
}
static void* c_rwlock(void* a) {
  (void)a;
  pthread_rwlock_rdlock(&g_crw);
  pthread_rwlock_unlock(&g_crw);
  return NULL;
}
static void* c_spin(void* a) {
  (void)a;
  volatile unsigned long x = 0;
  while (!atomic_load(&g_stop)) {
    for (int i = 0; i < 100000; i++) x++;
    usleep(500);
  }
  return NULL;
}

static void part_c(void) {
  enum { kKills = 200 };
  set_handler(0);
  sem_init(&g_csem, 0, 0);
  (void)!pipe(g_pipe);
  pthread_mutex_lock(&g_hold);
  pthread_rwlock_wrlock(&g_crw);
  void* (*fns[])(void*) = {c_sem, c_cond, c_futex, c_sleep, c_read, c_mutex, c_rwlock, c_spin, c_spin};
  enum { kN = sizeof fns / sizeof fns[0] };
  pthread_t t[kN];
  for (int i = 0; i < kN; i++) pthread_create(&t[i], NULL, fns[i], NULL);
  usleep(50000);
  block_usr1(SIG_BLOCK);
  atomic_store(&g_hits, 0);
  int lost = 0;
  for (int i = 0; i < kKills; i++) {
    kill(getpid(), SIGUSR1);
    long long t0 = now_us();
    while (atomic_load(&g_hits) < i + 1 && now_us() - t0 < 5000000) usleep(100);
    if (atomic_load(&g_hits) < i + 1) lost++;
    if (now_us() - t0 > g_max_latency_us) g_max_latency_us = now_us() - t0;
  }
  usleep(100000);
  int runs = atomic_load(&g_hits);
  atomic_store(&g_stop, 1);
  pthread_mutex_unlock(&g_hold);
  pthread_rwlock_unlock(&g_crw);
  for (int i = 0; i < 4; i++) sem_post(&g_csem);
  pthread_mutex_lock(&g_cmu);
  pthread_cond_broadcast(&g_ccv);
  pthread_mutex_unlock(&g_cmu);
  atomic_store(&g_cword, 1);
  syscall(SYS_futex, &g_cword, FUTEX_WAKE_PRIVATE, 8, NULL, NULL, 0);
  (void)!write(g_pipe[1], "x", 1);
  for (int i = 0; i < kN; i++) pthread_join(t[i], NULL);
  block_usr1(SIG_UNBLOCK);
  fprintf(stderr, "sig_waits: (c) runs=%d lost=%d\n", runs, lost);
  printf("(c) %d kills, one at a time: handler ran once each: %s\n", kKills, runs == kKills && !lost ? "yes" : "no");
}

int main(void) {
  mnp_report_shim();
  alarm(120);
  setvbuf(stdout, NULL, _IOLBF, 0);
  part_a();
  part_b();
  mnp_check("sig_latency_parked_max_us", g_max_latency_us);
  g_max_latency_us = 0;
  part_c();
  mnp_check("sig_latency_kills_max_us", g_max_latency_us);
  return 0;
}
