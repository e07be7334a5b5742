/* mutex_semantics — the error codes of the mutex API, exactly as glibc.
 *
 * Covers: errorcheck relock (EDEADLK), unlock by a non-owner and of an
 * unlocked mutex (EPERM); recursive lock depth N, unlock by another thread
 * (EPERM), N unlocks then one too many (EPERM); trylock of a held mutex
 * (EBUSY, from the owner and from another thread); timedlock with a
 * CLOCK_REALTIME deadline 20 ms ahead and clocklock with CLOCK_MONOTONIC
 * (ETIMEDOUT), a deadline already past (ETIMEDOUT), invalid tv_nsec (-1 and
 * 1e9) and an unsupported clock (EINVAL) while contended; robust mutexes whose
 * owner exits while holding them (EOWNERDEAD, pthread_mutex_consistent, and
 * ENOTRECOVERABLE when unlocked without it); pthread_mutex_consistent on a
 * non-robust or consistent mutex (EINVAL); destroy of a locked mutex (EBUSY);
 * prioceiling get/set on a PTHREAD_PRIO_PROTECT mutex (never locked here).
 *
 * Every result prints as name=ERRNO; a mismatch adds a FAIL line and exit 1.
 * A hang means a contended wait never times out or a dead owner is never
 * noticed. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "sync_util.h"

/* Runs fn(arg) on a new thread and returns its int result. */
typedef int (*Fn)(void*);
typedef struct {
  Fn fn;
  void* arg;
  int result;
} Call;
static void* call_tramp(void* p) {
  Call* c = p;
  c->result = c->fn(c->arg);
  return NULL;
}
static int on_other_thread(Fn fn, void* arg) {
  Call c = {fn, arg, -1};
  pthread_t t;
  if (pthread_create(&t, NULL, call_tramp, &c) != 0 || pthread_join(t, NULL) != 0) return -1;
  return c.result;
}

static int do_unlock(void* m) { return pthread_mutex_unlock(m); }
static int do_trylock(void* m) { return pthread_mutex_trylock(m); }
static int do_lock_and_exit(void* m) { return pthread_mutex_lock(m); } /* never unlocks */
static int do_timed_20ms(void* m) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 20);
  return pthread_mutex_timedlock(m, &ts);
}
static int do_clock_20ms(void* m) {
  struct timespec ts = deadline_ms(CLOCK_MONOTONIC, 20);
  return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
}
static int do_timed_past(void* m) {
  struct timespec ts = {1, 0}; /* 1970 */
  return pthread_mutex_timedlock(m, &ts);
}
static int do_timed_nsec_neg(void* m) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 1000);
  ts.tv_nsec = -1;
  return pthread_mutex_timedlock(m, &ts);
}
static int do_timed_nsec_big(void* m) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 1000);
  ts.tv_nsec = 1000000000L;
  return pthread_mutex_timedlock(m, &ts);
}
static int do_clock_bad_clock(void* m) {
  struct timespec ts = deadline_ms(CLOCK_MONOTONIC, 1000);
  return pthread_mutex_clocklock(m, CLOCK_PROCESS_CPUTIME_ID, &ts);
}

static void init_kind(pthread_mutex_t* m, int type, int robust) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, type);
  if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  SYNC_CHECK(pthread_mutex_init(m, &a) == 0);
  pthread_mutexattr_destroy(&a);
}

static void errorcheck(void) {
  pthread_mutex_t m;
  init_kind(&m, PTHREAD_MUTEX_ERRORCHECK, 0);
  expect_err("errorcheck_lock", pthread_mutex_lock(&m), 0);
  expect_err("errorcheck_relock", pthread_mutex_lock(&m), EDEADLK);
  expect_err("errorcheck_trylock_owner", pthread_mutex_trylock(&m), EBUSY);
  expect_err("errorcheck_unlock_nonowner", on_other_thread(do_unlock, &m), EPERM);
  expect_err("errorcheck_unlock", pthread_mutex_unlock(&m), 0);
  expect_err("errorcheck_unlock_unlocked", pthread_mutex_unlock(&m), EPERM);
  expect_err("errorcheck_destroy", pthread_mutex_destroy(&m), 0);
}

static void recursive(void) {
  enum { kDepth = 10 };
  pthread_mutex_t m;
  init_kind(&m, PTHREAD_MUTEX_RECURSIVE, 0);
  int bad = 0;
  for (int i = 0; i < kDepth; i++) bad |= pthread_mutex_lock(&m) != 0;
  bad |= pthread_mutex_trylock(&m) != 0; /* owner: depth 11 */
  expect_err("recursive_lock_depth_11", bad ? EINVAL : 0, 0);
  expect_err("recursive_unlock_nonowner", on_other_thread(do_unlock, &m), EPERM);
  expect_err("recursive_trylock_other", on_other_thread(do_trylock, &m), EBUSY);
  for (int i = 0; i < kDepth; i++) bad |= pthread_mutex_unlock(&m) != 0;
  expect_err("recursive_unlock_10", bad ? EINVAL : 0, 0);
  expect_err("recursive_still_held_trylock_other", on_other_thread(do_trylock, &m), EBUSY);
  expect_err("recursive_unlock_11", pthread_mutex_unlock(&m), 0);
  expect_err("recursive_unlock_extra", pthread_mutex_unlock(&m), EPERM);
  expect_err("recursive_destroy", pthread_mutex_destroy(&m), 0);
}

static void contended(void) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  expect_err("normal_lock", pthread_mutex_lock(&m), 0);
  expect_err("normal_trylock_owner", pthread_mutex_trylock(&m), EBUSY);
  expect_err("normal_trylock_other", on_other_thread(do_trylock, &m), EBUSY);
  expect_err("timedlock_realtime_20ms", on_other_thread(do_timed_20ms, &m), ETIMEDOUT);
  expect_err("clocklock_monotonic_20ms", on_other_thread(do_clock_20ms, &m), ETIMEDOUT);
  expect_err("timedlock_past", on_other_thread(do_timed_past, &m), ETIMEDOUT);
  expect_err("timedlock_nsec_minus1", on_other_thread(do_timed_nsec_neg, &m), EINVAL);
  expect_err("timedlock_nsec_1e9", on_other_thread(do_timed_nsec_big, &m), EINVAL);
  expect_err("clocklock_bad_clock", on_other_thread(do_clock_bad_clock, &m), EINVAL);
  expect_err("destroy_locked", pthread_mutex_destroy(&m), EBUSY);
  expect_err("normal_unlock", pthread_mutex_unlock(&m), 0);
  /* Uncontended: the timed variants succeed at once. */
  expect_err("timedlock_free", on_other_thread(do_timed_20ms, &m), 0); /* exits holding it; m is dropped */
  pthread_mutex_t m2 = PTHREAD_MUTEX_INITIALIZER;
  struct timespec ts = deadline_ms(CLOCK_MONOTONIC, 20);
  expect_err("clocklock_free", pthread_mutex_clocklock(&m2, CLOCK_MONOTONIC, &ts), 0);
  expect_err("clocklock_free_unlock", pthread_mutex_unlock(&m2), 0);
  expect_err("destroy_unlocked", pthread_mutex_destroy(&m2), 0);
}

static void robust(void) {
  pthread_mutex_t m;
  init_kind(&m, PTHREAD_MUTEX_NORMAL, 1);
  expect_err("robust_consistent_when_consistent", pthread_mutex_consistent(&m), EINVAL);
  expect_err("robust_owner_exits_holding", on_other_thread(do_lock_and_exit, &m), 0);
  expect_err("robust_lock_after_owner_death", pthread_mutex_lock(&m), EOWNERDEAD);
  expect_err("robust_consistent", pthread_mutex_consistent(&m), 0);
  expect_err("robust_unlock", pthread_mutex_unlock(&m), 0);
  expect_err("robust_lock_again", pthread_mutex_lock(&m), 0);
  expect_err("robust_unlock_again", pthread_mutex_unlock(&m), 0);

  /* The dead owner is also reported to a trylock. */
  expect_err("robust_owner_exits_holding_2", on_other_thread(do_lock_and_exit, &m), 0);
  expect_err("robust_trylock_after_owner_death", pthread_mutex_trylock(&m), EOWNERDEAD);
  expect_err("robust_unlock_without_consistent", pthread_mutex_unlock(&m), 0);
  expect_err("robust_lock_unrecoverable", pthread_mutex_lock(&m), ENOTRECOVERABLE);
  expect_err("robust_trylock_unrecoverable", pthread_mutex_trylock(&m), ENOTRECOVERABLE);
  expect_err("robust_destroy_unrecoverable", pthread_mutex_destroy(&m), 0);

  /* Errorcheck + robust: EOWNERDEAD makes the caller the owner, so a relock
   * is EDEADLK. */
  pthread_mutex_t e;
  init_kind(&e, PTHREAD_MUTEX_ERRORCHECK, 1);
  expect_err("robust_errorcheck_owner_exits", on_other_thread(do_lock_and_exit, &e), 0);
  expect_err("robust_errorcheck_lock", pthread_mutex_lock(&e), EOWNERDEAD);
  expect_err("robust_errorcheck_relock", pthread_mutex_lock(&e), EDEADLK);
  expect_err("robust_errorcheck_consistent", pthread_mutex_consistent(&e), 0);
  expect_err("robust_errorcheck_unlock", pthread_mutex_unlock(&e), 0);
  expect_err("robust_errorcheck_destroy", pthread_mutex_destroy(&e), 0);

  pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
  expect_err("consistent_nonrobust", pthread_mutex_consistent(&plain), EINVAL);
}

/* A robust mutex whose owner dies while another thread is blocked in lock. */
static pthread_mutex_t g_robust_wait;
static atomic_int g_holder_locked;
static atomic_int g_release_holder;
static void* robust_holder(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_robust_wait);
  atomic_store(&g_holder_locked, 1);
  while (!atomic_load(&g_release_holder)) usleep(1000);
  return NULL; /* exits holding the mutex */
}
static void* robust_waiter(void* arg) {
  (void)arg;
  int rc = pthread_mutex_lock(&g_robust_wait);
  if (rc == EOWNERDEAD) pthread_mutex_consistent(&g_robust_wait);
  if (rc == 0 || rc == EOWNERDEAD) pthread_mutex_unlock(&g_robust_wait);
  return (void*)(intptr_t)rc;
}
static void robust_blocked_waiter(void) {
  init_kind(&g_robust_wait, PTHREAD_MUTEX_NORMAL, 1);
  pthread_t h, w;
  pthread_create(&h, NULL, robust_holder, NULL);
  while (!atomic_load(&g_holder_locked)) usleep(1000);
  pthread_create(&w, NULL, robust_waiter, NULL);
  usleep(20000); /* let the waiter block (either order gives EOWNERDEAD) */
  atomic_store(&g_release_holder, 1);
  pthread_join(h, NULL);
  void* r;
  pthread_join(w, &r);
  expect_err("robust_blocked_waiter", (int)(intptr_t)r, EOWNERDEAD);
  expect_err("robust_blocked_waiter_destroy", pthread_mutex_destroy(&g_robust_wait), 0);
}

static void prioceiling(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  expect_err("attr_setprotocol_protect", pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT), 0);
  expect_err("attr_setprioceiling_10", pthread_mutexattr_setprioceiling(&a, 10), 0);
  int v = -1;
  expect_err("attr_getprioceiling", pthread_mutexattr_getprioceiling(&a, &v), 0);
  printf("attr_prioceiling=%d\n", v);
  pthread_mutex_t m;
  expect_err("pp_init", pthread_mutex_init(&m, &a), 0);
  v = -1;
  expect_err("pp_getprioceiling", pthread_mutex_getprioceiling(&m, &v), 0);
  printf("pp_prioceiling=%d\n", v);
  int old = -1;
  expect_err("pp_setprioceiling_20", pthread_mutex_setprioceiling(&m, 20, &old), 0);
  printf("pp_old_prioceiling=%d\n", old);
  v = -1;
  pthread_mutex_getprioceiling(&m, &v);
  printf("pp_prioceiling_now=%d\n", v);
  SYNC_CHECK(v == 20 && old == 10);
  expect_err("pp_setprioceiling_out_of_range", pthread_mutex_setprioceiling(&m, 100000, &old), EINVAL);
  expect_err("pp_destroy", pthread_mutex_destroy(&m), 0);
  pthread_mutexattr_destroy(&a);
  pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
  expect_err("getprioceiling_nonpp", pthread_mutex_getprioceiling(&plain, &v), EINVAL);
}

int main(void) {
  mnp_report_shim();
  errorcheck();
  recursive();
  contended();
  robust();
  robust_blocked_waiter();
  prioceiling();
  return sync_finish("mutex_semantics");
}
