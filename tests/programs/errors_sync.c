/* errors_sync — return values and errno of the synchronisation objects at
 * their edges, natively and under the shim (issue 8, item 7).
 *
 * Mutexes of every kind: relock by the owner (EDEADLK, EBUSY, recursion),
 * recursion count at its limit (the count word is set just below it),
 * unlock by a non-owner and of an unlocked mutex (EPERM), destroy of a
 * locked one (EBUSY), robust mutexes through owner death, consistent and
 * ENOTRECOVERABLE, PRIO_INHERIT and PRIO_PROTECT ones (ceiling get/set),
 * timed and clock locks with a bad timespec, a past deadline and a bad
 * clock, both when the lock is free and when it would block.  Condition
 * variables: timed waits with bad input, waits on an error-checking mutex
 * that is not held.  rwlocks: the same edges.  Barriers: bad counts.
 * Semaphores: bounds, overflow, timed waits; a process-shared and a named
 * one posted from another process.  Spinlocks and pthread_once.
 * Contended cases hold the object in a helper thread (or main) and try
 * from the other; nothing waits for longer than a past deadline.
 * Each line prints the value and errno (errors_common.h); the runner
 * compares them with glibc's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors_common.h"
#include "mnp_check.h"

static const struct timespec kBadNsec = {0, 1000000000L};
static const struct timespec kNegNsec = {0, -1};
static const struct timespec kPast = {1, 0};
static const struct timespec kNegSec = {-1, 0};

static struct timespec past_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec -= 1;
  return ts;
}

static struct timespec soon(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  ts.tv_nsec += 20 * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_nsec -= 1000000000L;
    ts.tv_sec++;
  }
  return ts;
}

static void run_in_thread(void (*fn)(void*), void* arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, (void* (*)(void*))(void*)fn, arg) != 0) {
    printf("pthread_create failed\n");
    return;
  }
  pthread_join(t, NULL);
}

static void mutex_make(pthread_mutex_t* m, int type, int robust, int proto) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, type);
  if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (proto >= 0) pthread_mutexattr_setprotocol(&a, proto);
  int r = pthread_mutex_init(m, &a);
  if (r) printf("mutex_init type %d robust %d proto %d: %s\n", type, robust, proto, err_name(r));
  pthread_mutexattr_destroy(&a);
}

static const char* type_name(int type) {
  switch (type) {
    case PTHREAD_MUTEX_NORMAL:
      return "normal";
    case PTHREAD_MUTEX_RECURSIVE:
      return "recursive";
    case PTHREAD_MUTEX_ERRORCHECK:
      return "errorcheck";
    default:
      return "adaptive";
  }
}

/* ---- tries from a thread that does not hold the mutex ---- */
static pthread_mutex_t* g_m;
static int g_other_unlock; /* defined for error-checking, recursive, robust, PI */
static void other_tries(void* arg) {
  const char* p = arg;
  char n[128];
  struct timespec pm = past_mono();
  snprintf(n, sizeof n, "%s: other trylock", p);
  CHECK_EN(n, pthread_mutex_trylock(g_m));
  if (g_other_unlock) {
    snprintf(n, sizeof n, "%s: other unlock", p);
    CHECK_EN(n, pthread_mutex_unlock(g_m));
  }
  snprintf(n, sizeof n, "%s: other timedlock bad nsec", p);
  CHECK_EN(n, pthread_mutex_timedlock(g_m, &kBadNsec));
  snprintf(n, sizeof n, "%s: other timedlock negative nsec", p);
  CHECK_EN(n, pthread_mutex_timedlock(g_m, &kNegNsec));
  snprintf(n, sizeof n, "%s: other timedlock past", p);
  CHECK_EN(n, pthread_mutex_timedlock(g_m, &kPast));
  snprintf(n, sizeof n, "%s: other timedlock negative sec", p);
  CHECK_EN(n, pthread_mutex_timedlock(g_m, &kNegSec));
  snprintf(n, sizeof n, "%s: other clocklock monotonic past", p);
  CHECK_EN(n, pthread_mutex_clocklock(g_m, CLOCK_MONOTONIC, &pm));
  snprintf(n, sizeof n, "%s: other clocklock bad clock", p);
  CHECK_EN(n, pthread_mutex_clocklock(g_m, CLOCK_PROCESS_CPUTIME_ID, &pm));
  snprintf(n, sizeof n, "%s: other clocklock clock 99", p);
  CHECK_EN(n, pthread_mutex_clocklock(g_m, 99, &pm));
}

/* A lock attempt on a free mutex; undone when it succeeded. */
#define free_try(n, expr)                  \
  do {                                     \
    errno = ERR_SENTINEL;                  \
    int r_ = (expr);                       \
    err_line((n), r_, errno);              \
    if (r_ == 0) pthread_mutex_unlock(&m); \
  } while (0)

static void mutex_family(int type, int robust, int proto) {
  char p[64], n[160];
  snprintf(p, sizeof p, "mutex %s%s%s", type_name(type), robust ? " robust" : "",
           proto == PTHREAD_PRIO_INHERIT   ? " pi"
           : proto == PTHREAD_PRIO_PROTECT ? " pp"
                                           : "");
  pthread_mutex_t m;
  mutex_make(&m, type, robust, proto);
  struct timespec pm = past_mono();

  /* free: the timespec checks */
  snprintf(n, sizeof n, "%s: free timedlock bad nsec", p);
  free_try(n, pthread_mutex_timedlock(&m, &kBadNsec));
  snprintf(n, sizeof n, "%s: free timedlock past", p);
  free_try(n, pthread_mutex_timedlock(&m, &kPast));
  snprintf(n, sizeof n, "%s: free clocklock bad clock", p);
  free_try(n, pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &pm));
  snprintf(n, sizeof n, "%s: free clocklock clock -1", p);
  free_try(n, pthread_mutex_clocklock(&m, -1, &pm));
  snprintf(n, sizeof n, "%s: free clocklock monotonic bad nsec", p);
  free_try(n, pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &kNegNsec));

  /* unlock of an unlocked or foreign normal mutex is undefined */
  int checked_unlock =
      robust || proto == PTHREAD_PRIO_INHERIT || type == PTHREAD_MUTEX_ERRORCHECK || type == PTHREAD_MUTEX_RECURSIVE;
  if (checked_unlock) {
    snprintf(n, sizeof n, "%s: unlock unlocked", p);
    CHECK_EN(n, pthread_mutex_unlock(&m));
  }
  snprintf(n, sizeof n, "%s: lock", p);
  CHECK_EN(n, pthread_mutex_lock(&m));
  snprintf(n, sizeof n, "%s: trylock by owner", p);
  int tr = pthread_mutex_trylock(&m);
  err_line(n, tr, ERR_SENTINEL);
  if (type == PTHREAD_MUTEX_ERRORCHECK || type == PTHREAD_MUTEX_RECURSIVE) {
    snprintf(n, sizeof n, "%s: relock by owner", p);
    CHECK_EN(n, pthread_mutex_lock(&m));
  }
  /* Timed relock by the owner: a normal mutex would wait until the deadline. */
  snprintf(n, sizeof n, "%s: owner timedlock bad nsec", p);
  CHECK_EN(n, pthread_mutex_timedlock(&m, &kBadNsec));
  snprintf(n, sizeof n, "%s: owner timedlock past", p);
  CHECK_EN(n, pthread_mutex_timedlock(&m, &kPast));
  snprintf(n, sizeof n, "%s: owner clocklock bad clock", p);
  CHECK_EN(n, pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &pm));
  if (!robust) { /* glibc destroys a locked robust mutex */
    snprintf(n, sizeof n, "%s: destroy locked", p);
    CHECK_EN(n, pthread_mutex_destroy(&m));
  }
  g_m = &m;
  g_other_unlock = checked_unlock;
  run_in_thread(other_tries, p);
  /* unlock as often as it was taken */
  int held = 1;
  if (type == PTHREAD_MUTEX_RECURSIVE) held = 5; /* lock, trylock, relock, timedlock x2 */
  for (int i = 0; i < held; i++) {
    snprintf(n, sizeof n, "%s: unlock %d", p, i);
    CHECK_EN(n, pthread_mutex_unlock(&m));
  }
  if (checked_unlock) {
    snprintf(n, sizeof n, "%s: unlock again", p);
    CHECK_EN(n, pthread_mutex_unlock(&m));
  }
  snprintf(n, sizeof n, "%s: consistent (not inconsistent)", p);
  CHECK_EN(n, pthread_mutex_consistent(&m));
  int ceil = -7;
  snprintf(n, sizeof n, "%s: getprioceiling", p);
  CHECK_EN(n, pthread_mutex_getprioceiling(&m, &ceil));
  printf("%s: ceiling %d\n", p, ceil);
  int old = -7;
  snprintf(n, sizeof n, "%s: setprioceiling 5", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 5, &old));
  printf("%s: old ceiling %d\n", p, old);
  snprintf(n, sizeof n, "%s: setprioceiling 1000", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 1000, &old));
  snprintf(n, sizeof n, "%s: setprioceiling -1", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, -1, &old));
  ceil = -7;
  pthread_mutex_getprioceiling(&m, &ceil);
  printf("%s: ceiling now %d\n", p, ceil);
  pthread_mutex_lock(&m);
  snprintf(n, sizeof n, "%s: setprioceiling while held", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 7, &old));
  printf("%s: old ceiling %d\n", p, old);
  pthread_mutex_unlock(&m);
  snprintf(n, sizeof n, "%s: destroy", p);
  CHECK_EN(n, pthread_mutex_destroy(&m));
}

/* ---- PRIO_PROTECT: the ceiling only.  Locking one makes glibc change the
 * caller's real-time priority, whose result depends on the machine's rights
 * (and which the shim does not model). */
static void pp_checks(int type) {
  char p[64], n[160];
  snprintf(p, sizeof p, "mutex %s pp", type_name(type));
  pthread_mutex_t m;
  mutex_make(&m, type, 0, PTHREAD_PRIO_PROTECT);
  int ceil = -7, old = -7;
  snprintf(n, sizeof n, "%s: getprioceiling", p);
  CHECK_EN(n, pthread_mutex_getprioceiling(&m, &ceil));
  printf("%s: ceiling %d\n", p, ceil);
  snprintf(n, sizeof n, "%s: setprioceiling 5", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 5, &old));
  printf("%s: old ceiling %d\n", p, old);
  snprintf(n, sizeof n, "%s: setprioceiling 1000", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 1000, &old));
  snprintf(n, sizeof n, "%s: setprioceiling 0", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 0, &old));
  snprintf(n, sizeof n, "%s: setprioceiling 99", p);
  CHECK_EN(n, pthread_mutex_setprioceiling(&m, 99, &old));
  ceil = -7;
  pthread_mutex_getprioceiling(&m, &ceil);
  printf("%s: ceiling now %d\n", p, ceil);
  ceil = -7;
  pthread_mutex_getprioceiling(&m, &ceil);
  printf("%s: final ceiling %d\n", p, ceil);
  snprintf(n, sizeof n, "%s: destroy", p);
  CHECK_EN(n, pthread_mutex_destroy(&m));
}

/* ---- destroy of a mutex whose user waits on a condvar: glibc counts the
 * waiter as a user (EBUSY) ---- */
static pthread_mutex_t g_cwm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cwc = PTHREAD_COND_INITIALIZER;
static int g_cw_flag, g_cw_go;
static void* cond_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_cwm);
  g_cw_flag = 1;
  while (!g_cw_go) pthread_cond_wait(&g_cwc, &g_cwm);
  pthread_mutex_unlock(&g_cwm);
  return NULL;
}
static void destroy_with_cond_waiter(void) {
  pthread_t t;
  pthread_create(&t, NULL, cond_waiter, NULL);
  for (;;) {
    pthread_mutex_lock(&g_cwm);
    int f = g_cw_flag;
    pthread_mutex_unlock(&g_cwm);
    if (f) break;
    usleep(1000);
  }
  /* the waiter released the mutex inside pthread_cond_wait */
  CHECK_EN("mutex: destroy while a cond waiter uses it", pthread_mutex_destroy(&g_cwm));
  pthread_mutex_lock(&g_cwm);
  g_cw_go = 1;
  pthread_cond_signal(&g_cwc);
  pthread_mutex_unlock(&g_cwm);
  pthread_join(t, NULL);
  CHECK_EN("mutex: destroy after the waiter left", pthread_mutex_destroy(&g_cwm));
}

/* ---- recursion limit ---- */
static void recursion_limit(void) {
  pthread_mutex_t m;
  mutex_make(&m, PTHREAD_MUTEX_RECURSIVE, 0, -1);
  CHECK_EN("recursive: lock", pthread_mutex_lock(&m));
  m.__data.__count = UINT_MAX - 1;
  CHECK_EN("recursive: lock at count max-1", pthread_mutex_lock(&m));
  CHECK_EN("recursive: lock at count max", pthread_mutex_lock(&m));
  CHECK_EN("recursive: trylock at count max", pthread_mutex_trylock(&m));
  m.__data.__count = 1;
  CHECK_EN("recursive: unlock", pthread_mutex_unlock(&m));
  CHECK_EN("recursive: destroy", pthread_mutex_destroy(&m));
}

/* ---- robust: owner death ---- */
static pthread_mutex_t g_robust;
static void lock_and_die(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_robust);
}
static void robust_family(int type) {
  char p[64], n[160];
  snprintf(p, sizeof p, "robust %s", type_name(type));
  struct timespec pm = past_mono();

  mutex_make(&g_robust, type, 1, -1);
  run_in_thread(lock_and_die, NULL);
  snprintf(n, sizeof n, "%s: lock after owner died", p);
  CHECK_EN(n, pthread_mutex_lock(&g_robust));
  snprintf(n, sizeof n, "%s: relock while inconsistent", p);
  if (type != PTHREAD_MUTEX_NORMAL) CHECK_EN(n, pthread_mutex_lock(&g_robust));
  snprintf(n, sizeof n, "%s: unlock without consistent", p);
  CHECK_EN(n, pthread_mutex_unlock(&g_robust));
  snprintf(n, sizeof n, "%s: unlock again", p);
  CHECK_EN(n, pthread_mutex_unlock(&g_robust));
  snprintf(n, sizeof n, "%s: lock not recoverable", p);
  CHECK_EN(n, pthread_mutex_lock(&g_robust));
  snprintf(n, sizeof n, "%s: trylock not recoverable", p);
  CHECK_EN(n, pthread_mutex_trylock(&g_robust));
  snprintf(n, sizeof n, "%s: timedlock not recoverable", p);
  CHECK_EN(n, pthread_mutex_clocklock(&g_robust, CLOCK_MONOTONIC, &pm));
  snprintf(n, sizeof n, "%s: timedlock bad nsec not recoverable", p);
  CHECK_EN(n, pthread_mutex_timedlock(&g_robust, &kBadNsec));
  snprintf(n, sizeof n, "%s: consistent not recoverable", p);
  CHECK_EN(n, pthread_mutex_consistent(&g_robust));
  snprintf(n, sizeof n, "%s: destroy not recoverable", p);
  CHECK_EN(n, pthread_mutex_destroy(&g_robust));

  mutex_make(&g_robust, type, 1, -1);
  run_in_thread(lock_and_die, NULL);
  snprintf(n, sizeof n, "%s: trylock after owner died", p);
  CHECK_EN(n, pthread_mutex_trylock(&g_robust));
  snprintf(n, sizeof n, "%s: consistent", p);
  CHECK_EN(n, pthread_mutex_consistent(&g_robust));
  snprintf(n, sizeof n, "%s: consistent twice", p);
  CHECK_EN(n, pthread_mutex_consistent(&g_robust));
  snprintf(n, sizeof n, "%s: unlock", p);
  CHECK_EN(n, pthread_mutex_unlock(&g_robust));
  snprintf(n, sizeof n, "%s: lock again", p);
  CHECK_EN(n, pthread_mutex_lock(&g_robust));
  snprintf(n, sizeof n, "%s: unlock again", p);
  CHECK_EN(n, pthread_mutex_unlock(&g_robust));
  snprintf(n, sizeof n, "%s: destroy", p);
  CHECK_EN(n, pthread_mutex_destroy(&g_robust));

  mutex_make(&g_robust, type, 1, -1);
  run_in_thread(lock_and_die, NULL);
  snprintf(n, sizeof n, "%s: timedlock after owner died", p);
  CHECK_EN(n, pthread_mutex_clocklock(&g_robust, CLOCK_MONOTONIC, &pm));
  snprintf(n, sizeof n, "%s: consistent after timedlock", p);
  CHECK_EN(n, pthread_mutex_consistent(&g_robust));
  pthread_mutex_unlock(&g_robust);
  pthread_mutex_destroy(&g_robust);
}

/* ---- condition variables ---- */
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static void cond_checks(void) {
  pthread_mutex_t m, em;
  mutex_make(&m, PTHREAD_MUTEX_NORMAL, 0, -1);
  mutex_make(&em, PTHREAD_MUTEX_ERRORCHECK, 0, -1);
  struct timespec pm = past_mono();
  CHECK_EN("cond: signal no waiters", pthread_cond_signal(&g_cv));
  CHECK_EN("cond: broadcast no waiters", pthread_cond_broadcast(&g_cv));
  pthread_mutex_lock(&m);
  CHECK_EN("cond: timedwait bad nsec", pthread_cond_timedwait(&g_cv, &m, &kBadNsec));
  CHECK_EN("cond: timedwait negative nsec", pthread_cond_timedwait(&g_cv, &m, &kNegNsec));
  CHECK_EN("cond: timedwait past", pthread_cond_timedwait(&g_cv, &m, &kPast));
  CHECK_EN("cond: timedwait negative sec", pthread_cond_timedwait(&g_cv, &m, &kNegSec));
  CHECK_EN("cond: clockwait monotonic past", pthread_cond_clockwait(&g_cv, &m, CLOCK_MONOTONIC, &pm));
  CHECK_EN("cond: clockwait bad clock", pthread_cond_clockwait(&g_cv, &m, CLOCK_PROCESS_CPUTIME_ID, &pm));
  CHECK_EN("cond: clockwait clock 99", pthread_cond_clockwait(&g_cv, &m, 99, &pm));
  CHECK_EN("cond: clockwait bad nsec", pthread_cond_clockwait(&g_cv, &m, CLOCK_MONOTONIC, &kBadNsec));
  CHECK_EN("cond: mutex still held (trylock)", pthread_mutex_trylock(&m));
  pthread_mutex_unlock(&m);

  CHECK_EN("cond: timedwait errorcheck not held", pthread_cond_timedwait(&g_cv, &em, &kPast));
  struct timespec s = soon(CLOCK_REALTIME);
  CHECK_EN("cond: timedwait errorcheck not held, future", pthread_cond_timedwait(&g_cv, &em, &s));
  CHECK_EN("cond: timedwait errorcheck not held, bad nsec", pthread_cond_timedwait(&g_cv, &em, &kBadNsec));
  CHECK_EN("cond: errorcheck still unlocked (unlock)", pthread_mutex_unlock(&em));
  pthread_mutex_lock(&em);
  CHECK_EN("cond: timedwait errorcheck held, past", pthread_cond_timedwait(&g_cv, &em, &kPast));
  CHECK_EN("cond: errorcheck relock after wait", pthread_mutex_lock(&em));
  CHECK_EN("cond: errorcheck unlock after wait", pthread_mutex_unlock(&em));

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  CHECK_EN("condattr: setclock cputime", pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID));
  CHECK_EN("condattr: setclock monotonic", pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
  CHECK_EN("condattr: setpshared 7", pthread_condattr_setpshared(&ca, 7));
  pthread_cond_t mc;
  CHECK_EN("cond: init monotonic", pthread_cond_init(&mc, &ca));
  pthread_mutex_lock(&m);
  CHECK_EN("cond monotonic: timedwait past", pthread_cond_timedwait(&mc, &m, &pm));
  CHECK_EN("cond monotonic: timedwait bad nsec", pthread_cond_timedwait(&mc, &m, &kBadNsec));
  CHECK_EN("cond monotonic: clockwait realtime past", pthread_cond_clockwait(&mc, &m, CLOCK_REALTIME, &kPast));
  pthread_mutex_unlock(&m);
  CHECK_EN("cond: destroy monotonic", pthread_cond_destroy(&mc));
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_t sc;
  CHECK_EN("cond: init shared", pthread_cond_init(&sc, &ca));
  pthread_mutex_lock(&m);
  CHECK_EN("cond shared: timedwait past", pthread_cond_timedwait(&sc, &m, &pm));
  CHECK_EN("cond shared: timedwait bad nsec", pthread_cond_timedwait(&sc, &m, &kBadNsec));
  pthread_mutex_unlock(&m);
  CHECK_EN("cond: destroy shared", pthread_cond_destroy(&sc));
  pthread_condattr_destroy(&ca);
  CHECK_EN("cond: destroy", pthread_cond_destroy(&g_cv));
  pthread_mutex_destroy(&m);
  pthread_mutex_destroy(&em);
}

/* ---- rwlocks ---- */
static pthread_rwlock_t g_rw;
static void rw_other(void* arg) {
  const char* p = arg;
  char n[128];
  struct timespec pm = past_mono();
  snprintf(n, sizeof n, "%s: other tryrdlock", p);
  int r = pthread_rwlock_tryrdlock(&g_rw);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: other trywrlock", p);
  CHECK_EN(n, pthread_rwlock_trywrlock(&g_rw));
  snprintf(n, sizeof n, "%s: other timedwrlock past", p);
  CHECK_EN(n, pthread_rwlock_timedwrlock(&g_rw, &kPast));
  snprintf(n, sizeof n, "%s: other timedwrlock bad nsec", p);
  CHECK_EN(n, pthread_rwlock_timedwrlock(&g_rw, &kBadNsec));
  snprintf(n, sizeof n, "%s: other clockwrlock monotonic past", p);
  CHECK_EN(n, pthread_rwlock_clockwrlock(&g_rw, CLOCK_MONOTONIC, &pm));
  snprintf(n, sizeof n, "%s: other clockwrlock bad clock", p);
  CHECK_EN(n, pthread_rwlock_clockwrlock(&g_rw, CLOCK_PROCESS_CPUTIME_ID, &pm));
  snprintf(n, sizeof n, "%s: other timedrdlock past", p);
  r = pthread_rwlock_timedrdlock(&g_rw, &kPast);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: other timedrdlock negative sec", p);
  r = pthread_rwlock_timedrdlock(&g_rw, &kNegSec);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: other timedrdlock bad nsec", p);
  CHECK_EN(n, pthread_rwlock_timedrdlock(&g_rw, &kBadNsec));
}

static void rwlock_checks(int kind) {
  char p[64], n[160];
  snprintf(p, sizeof p, "rwlock kind %d", kind);
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, kind);
  CHECK_EN("rwlock: init", pthread_rwlock_init(&g_rw, &a));
  pthread_rwlockattr_destroy(&a);
  struct timespec pm = past_mono();

  snprintf(n, sizeof n, "%s: free timedrdlock bad nsec", p);
  int r = pthread_rwlock_timedrdlock(&g_rw, &kBadNsec);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: free timedwrlock bad nsec", p);
  r = pthread_rwlock_timedwrlock(&g_rw, &kNegNsec);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: free clockrdlock bad clock", p);
  r = pthread_rwlock_clockrdlock(&g_rw, CLOCK_PROCESS_CPUTIME_ID, &pm);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: free clockwrlock bad clock", p);
  r = pthread_rwlock_clockwrlock(&g_rw, 99, &pm);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);
  snprintf(n, sizeof n, "%s: free timedwrlock past", p);
  r = pthread_rwlock_timedwrlock(&g_rw, &kPast);
  err_line(n, r, ERR_SENTINEL);
  if (r == 0) pthread_rwlock_unlock(&g_rw);

  snprintf(n, sizeof n, "%s: wrlock", p);
  CHECK_EN(n, pthread_rwlock_wrlock(&g_rw));
  snprintf(n, sizeof n, "%s: writer timedwrlock past", p);
  CHECK_EN(n, pthread_rwlock_timedwrlock(&g_rw, &kPast));
  snprintf(n, sizeof n, "%s: writer timedwrlock bad nsec", p);
  CHECK_EN(n, pthread_rwlock_timedwrlock(&g_rw, &kBadNsec));
  snprintf(n, sizeof n, "%s: writer timedrdlock past", p);
  CHECK_EN(n, pthread_rwlock_timedrdlock(&g_rw, &kPast));
  snprintf(n, sizeof n, "%s: writer timedrdlock bad nsec", p);
  CHECK_EN(n, pthread_rwlock_timedrdlock(&g_rw, &kBadNsec));
  snprintf(n, sizeof n, "%s: writer clockrdlock bad clock", p);
  CHECK_EN(n, pthread_rwlock_clockrdlock(&g_rw, CLOCK_PROCESS_CPUTIME_ID, &pm));
  run_in_thread(rw_other, "rwlock write-held");
  snprintf(n, sizeof n, "%s: destroy write-held", p);
  CHECK_EN(n, pthread_rwlock_destroy(&g_rw));
  snprintf(n, sizeof n, "%s: unlock writer", p);
  CHECK_EN(n, pthread_rwlock_unlock(&g_rw));

  snprintf(n, sizeof n, "%s: rdlock", p);
  CHECK_EN(n, pthread_rwlock_rdlock(&g_rw));
  snprintf(n, sizeof n, "%s: rdlock twice", p);
  CHECK_EN(n, pthread_rwlock_rdlock(&g_rw));
  snprintf(n, sizeof n, "%s: reader trywrlock", p);
  CHECK_EN(n, pthread_rwlock_trywrlock(&g_rw));
  snprintf(n, sizeof n, "%s: reader timedwrlock past", p);
  CHECK_EN(n, pthread_rwlock_timedwrlock(&g_rw, &kPast));
  run_in_thread(rw_other, "rwlock read-held");
  snprintf(n, sizeof n, "%s: unlock reader 1", p);
  CHECK_EN(n, pthread_rwlock_unlock(&g_rw));
  snprintf(n, sizeof n, "%s: unlock reader 2", p);
  CHECK_EN(n, pthread_rwlock_unlock(&g_rw));
  snprintf(n, sizeof n, "%s: destroy", p);
  CHECK_EN(n, pthread_rwlock_destroy(&g_rw));
}

/* ---- barriers, spinlocks, once ---- */
static int g_once_calls;
static void once_fn(void) { g_once_calls++; }

static void barrier_spin_once(void) {
  pthread_barrier_t b;
  CHECK_EN("barrier: init 0", pthread_barrier_init(&b, NULL, 0));
  CHECK_EN("barrier: init INT_MAX", pthread_barrier_init(&b, NULL, INT_MAX));
  CHECK_EN("barrier: init INT_MAX/2", pthread_barrier_init(&b, NULL, INT_MAX / 2));
  CHECK_EN("barrier: init INT_MAX/2+1", pthread_barrier_init(&b, NULL, INT_MAX / 2 + 1));
  CHECK_EN("barrier: init INT_MAX+1", pthread_barrier_init(&b, NULL, (unsigned)INT_MAX + 1));
  CHECK_EN("barrier: init UINT_MAX", pthread_barrier_init(&b, NULL, UINT_MAX));
  CHECK_EN("barrier: init 1", pthread_barrier_init(&b, NULL, 1));
  CHECK_EN("barrier: wait count 1", pthread_barrier_wait(&b));
  CHECK_EN("barrier: wait count 1 again", pthread_barrier_wait(&b));
  CHECK_EN("barrier: destroy", pthread_barrier_destroy(&b));
  pthread_barrierattr_t ba;
  pthread_barrierattr_init(&ba);
  CHECK_EN("barrierattr: setpshared 7", pthread_barrierattr_setpshared(&ba, 7));
  pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
  CHECK_EN("barrier shared: init 0", pthread_barrier_init(&b, &ba, 0));
  CHECK_EN("barrier shared: init 1", pthread_barrier_init(&b, &ba, 1));
  CHECK_EN("barrier shared: wait", pthread_barrier_wait(&b));
  CHECK_EN("barrier shared: destroy", pthread_barrier_destroy(&b));
  pthread_barrierattr_destroy(&ba);

  pthread_spinlock_t s;
  CHECK_EN("spin: init bad pshared", pthread_spin_init(&s, 42));
  CHECK_EN("spin: init", pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE));
  CHECK_EN("spin: lock", pthread_spin_lock(&s));
  CHECK_EN("spin: trylock held", pthread_spin_trylock(&s));
  CHECK_EN("spin: unlock", pthread_spin_unlock(&s));
  CHECK_EN("spin: trylock free", pthread_spin_trylock(&s));
  CHECK_EN("spin: unlock", pthread_spin_unlock(&s));
  CHECK_EN("spin: destroy", pthread_spin_destroy(&s));

  static pthread_once_t once = PTHREAD_ONCE_INIT;
  CHECK_EN("once: first", pthread_once(&once, once_fn));
  CHECK_EN("once: second", pthread_once(&once, once_fn));
  printf("once: calls %d\n", g_once_calls);
}

/* ---- semaphores ---- */
static void sem_checks(int pshared) {
  char p[32], n[128];
  snprintf(p, sizeof p, "sem pshared %d", pshared);
  sem_t s;
  int v = -7;
  struct timespec pm = past_mono();
  snprintf(n, sizeof n, "%s: init SEM_VALUE_MAX+1", p);
  CHECK_SYS(n, sem_init(&s, pshared, (unsigned)SEM_VALUE_MAX + 1));
  snprintf(n, sizeof n, "%s: init UINT_MAX", p);
  CHECK_SYS(n, sem_init(&s, pshared, UINT_MAX));
  snprintf(n, sizeof n, "%s: init 0", p);
  CHECK_SYS(n, sem_init(&s, pshared, 0));
  snprintf(n, sizeof n, "%s: trywait 0", p);
  CHECK_SYS(n, sem_trywait(&s));
  snprintf(n, sizeof n, "%s: timedwait 0 bad nsec", p);
  CHECK_SYS(n, sem_timedwait(&s, &kBadNsec));
  snprintf(n, sizeof n, "%s: timedwait 0 negative nsec", p);
  CHECK_SYS(n, sem_timedwait(&s, &kNegNsec));
  snprintf(n, sizeof n, "%s: timedwait 0 past", p);
  CHECK_SYS(n, sem_timedwait(&s, &kPast));
  snprintf(n, sizeof n, "%s: timedwait 0 negative sec", p);
  CHECK_SYS(n, sem_timedwait(&s, &kNegSec));
  snprintf(n, sizeof n, "%s: clockwait 0 monotonic past", p);
  CHECK_SYS(n, sem_clockwait(&s, CLOCK_MONOTONIC, &pm));
  snprintf(n, sizeof n, "%s: clockwait 0 bad clock", p);
  CHECK_SYS(n, sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &pm));
  snprintf(n, sizeof n, "%s: post", p);
  CHECK_SYS(n, sem_post(&s));
  snprintf(n, sizeof n, "%s: timedwait 1 bad nsec", p);
  CHECK_SYS(n, sem_timedwait(&s, &kBadNsec));
  snprintf(n, sizeof n, "%s: clockwait 1 bad clock", p);
  CHECK_SYS(n, sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &pm));
  snprintf(n, sizeof n, "%s: clockwait 1 bad clock and nsec", p);
  CHECK_SYS(n, sem_clockwait(&s, 99, &kBadNsec));
  snprintf(n, sizeof n, "%s: getvalue", p);
  CHECK_SYS(n, sem_getvalue(&s, &v));
  printf("%s: value %d\n", p, v);
  snprintf(n, sizeof n, "%s: timedwait 1 past", p);
  CHECK_SYS(n, sem_timedwait(&s, &kPast));
  snprintf(n, sizeof n, "%s: destroy", p);
  CHECK_SYS(n, sem_destroy(&s));

  snprintf(n, sizeof n, "%s: init SEM_VALUE_MAX", p);
  CHECK_SYS(n, sem_init(&s, pshared, SEM_VALUE_MAX));
  snprintf(n, sizeof n, "%s: post at max", p);
  CHECK_SYS(n, sem_post(&s));
  snprintf(n, sizeof n, "%s: getvalue at max", p);
  CHECK_SYS(n, sem_getvalue(&s, &v));
  printf("%s: value %d\n", p, v);
  snprintf(n, sizeof n, "%s: wait at max", p);
  CHECK_SYS(n, sem_wait(&s));
  snprintf(n, sizeof n, "%s: post below max", p);
  CHECK_SYS(n, sem_post(&s));
  sem_destroy(&s);
}

/* ---- a process-shared semaphore really is shared: a child waits, the
 * parent posts (glibc marks such a semaphore with 128 in its `private`
 * word, the value a private one of the shim had, so the shim kept both in
 * its own table and the child's waiter was never woken) ---- */
static void sem_across_fork(int named) {
  const char* p = named ? "sem named across fork" : "sem pshared across fork";
  char n[128];
  sem_t* s;
  char name[64];
  if (named) {
    snprintf(name, sizeof name, "/mnp-errors-sync-%d", (int)getpid());
    s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    if (s == SEM_FAILED) {
      printf("%s: sem_open failed\n", p);
      return;
    }
    sem_unlink(name);
  } else {
    s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED || sem_init(s, 1, 0) != 0) {
      printf("%s: set-up failed\n", p);
      return;
    }
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10); /* a lost post kills the child, not the test run */
    _exit(sem_wait(s) == 0 ? 0 : 3);
  }
  usleep(50 * 1000); /* usually asleep by now; either order must work */
  snprintf(n, sizeof n, "%s: post", p);
  CHECK_SYS(n, sem_post(s));
  int st = 0;
  waitpid(pid, &st, 0);
  printf("%s: child %s %d\n", p, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  if (named) sem_close(s);
  else sem_destroy(s);
}

int main(void) {
  mnp_report_shim();
  static const int types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ERRORCHECK,
                              PTHREAD_MUTEX_ADAPTIVE_NP};
  for (int i = 0; i < 4; i++) {
    mutex_family(types[i], 0, -1);
    mutex_family(types[i], 1, -1);
    mutex_family(types[i], 0, PTHREAD_PRIO_INHERIT);
    mutex_family(types[i], 1, PTHREAD_PRIO_INHERIT);
  }
  for (int i = 0; i < 3; i++) pp_checks(types[i]);
  destroy_with_cond_waiter();
  recursion_limit();
  for (int i = 0; i < 3; i++) robust_family(types[i]);
  cond_checks();
  rwlock_checks(PTHREAD_RWLOCK_PREFER_READER_NP);
  rwlock_checks(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  barrier_spin_once();
  sem_checks(0);
  sem_checks(1);
  sem_across_fork(0);
  sem_across_fork(1);
  printf("done\n");
  return 0;
}
