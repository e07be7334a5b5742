/* mutex_kinds — mutual exclusion holds for every kind of pthread mutex.
 *
 * For each kind, 64 threads each add 1 to a shared (non-atomic) counter
 * 20,000 times inside the mutex; the final count must be 64 * 20,000.
 * Kinds: pthread_mutex_init(NULL attr); PTHREAD_MUTEX_INITIALIZER;
 * PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP (locked twice per increment);
 * PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP; PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
 * a mutex that is just zeroed memory (static zero, and memset 0 on the heap);
 * attr-initialised NORMAL, RECURSIVE, ERRORCHECK; a robust mutex; and the
 * success paths of trylock (falling back to lock on EBUSY), timedlock and
 * clocklock (CLOCK_MONOTONIC) with a far deadline.
 *
 * Failure looks like a count below 1,280,000 (lost updates: two threads inside
 * at once), a nonzero return from lock/unlock, or a hang. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync_util.h"

enum { kThreads = 64, kIters = 20000 };

enum Op { kLock, kLockTwice, kTry, kTimed, kClock };

typedef struct {
  const char* name;
  pthread_mutex_t* m;
  enum Op op;
  long counter; /* guarded by *m */
  atomic_long errors;
  atomic_long try_busy; /* trylock EBUSY fallbacks (not printed: timing) */
} Kind;

static void* worker(void* arg) {
  Kind* k = arg;
  struct timespec far_rt = deadline_ms(CLOCK_REALTIME, 3600 * 1000L);
  struct timespec far_mono = deadline_ms(CLOCK_MONOTONIC, 3600 * 1000L);
  for (int i = 0; i < kIters; i++) {
    int rc = 0, rc2 = 0;
    switch (k->op) {
      case kLock:
        rc = pthread_mutex_lock(k->m);
        break;
      case kLockTwice:
        rc = pthread_mutex_lock(k->m);
        rc2 = pthread_mutex_lock(k->m);
        break;
      case kTry:
        rc = pthread_mutex_trylock(k->m);
        if (rc == EBUSY) {
          atomic_fetch_add(&k->try_busy, 1);
          rc = pthread_mutex_lock(k->m);
        }
        break;
      case kTimed:
        rc = pthread_mutex_timedlock(k->m, &far_rt);
        break;
      case kClock:
        rc = pthread_mutex_clocklock(k->m, CLOCK_MONOTONIC, &far_mono);
        break;
    }
    if (rc != 0 || rc2 != 0) {
      atomic_fetch_add(&k->errors, 1);
      continue;
    }
    long c = k->counter; /* a read-modify-write that tears without exclusion */
    if ((i & 255) == 0) sched_yield();
    k->counter = c + 1;
    if (k->op == kLockTwice && pthread_mutex_unlock(k->m) != 0) atomic_fetch_add(&k->errors, 1);
    if (pthread_mutex_unlock(k->m) != 0) atomic_fetch_add(&k->errors, 1);
  }
  return NULL;
}

static pthread_mutex_t m_null_attr;
static pthread_mutex_t m_static = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_recursive_static = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_errorcheck_static = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_adaptive_static = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_static_zero; /* all-zero bytes, never initialised */
static pthread_mutex_t m_attr_normal, m_attr_recursive, m_attr_errorcheck, m_robust;
static pthread_mutex_t m_try, m_timed, m_clock;

static void init_with(pthread_mutex_t* m, int type, int robust) {
  pthread_mutexattr_t a;
  SYNC_CHECK(pthread_mutexattr_init(&a) == 0);
  SYNC_CHECK(pthread_mutexattr_settype(&a, type) == 0);
  if (robust) SYNC_CHECK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0);
  SYNC_CHECK(pthread_mutex_init(m, &a) == 0);
  pthread_mutexattr_destroy(&a);
}

int main(void) {
  mnp_report_shim();
  pthread_mutex_t* m_heap_zero = malloc(sizeof *m_heap_zero);
  memset(m_heap_zero, 0, sizeof *m_heap_zero);
  SYNC_CHECK(pthread_mutex_init(&m_null_attr, NULL) == 0);
  init_with(&m_attr_normal, PTHREAD_MUTEX_NORMAL, 0);
  init_with(&m_attr_recursive, PTHREAD_MUTEX_RECURSIVE, 0);
  init_with(&m_attr_errorcheck, PTHREAD_MUTEX_ERRORCHECK, 0);
  init_with(&m_robust, PTHREAD_MUTEX_NORMAL, 1);
  SYNC_CHECK(pthread_mutex_init(&m_try, NULL) == 0);
  SYNC_CHECK(pthread_mutex_init(&m_timed, NULL) == 0);
  SYNC_CHECK(pthread_mutex_init(&m_clock, NULL) == 0);

  Kind kinds[] = {
      {"null_attr", &m_null_attr, kLock, 0, 0, 0},
      {"static_initializer", &m_static, kLock, 0, 0, 0},
      {"recursive_initializer_np", &m_recursive_static, kLockTwice, 0, 0, 0},
      {"errorcheck_initializer_np", &m_errorcheck_static, kLock, 0, 0, 0},
      {"adaptive_initializer_np", &m_adaptive_static, kLock, 0, 0, 0},
      {"static_zero", &m_static_zero, kLock, 0, 0, 0},
      {"heap_memset_zero", m_heap_zero, kLock, 0, 0, 0},
      {"attr_normal", &m_attr_normal, kLock, 0, 0, 0},
      {"attr_recursive", &m_attr_recursive, kLockTwice, 0, 0, 0},
      {"attr_errorcheck", &m_attr_errorcheck, kLock, 0, 0, 0},
      {"robust", &m_robust, kLock, 0, 0, 0},
      {"trylock", &m_try, kTry, 0, 0, 0},
      {"timedlock", &m_timed, kTimed, 0, 0, 0},
      {"clocklock_monotonic", &m_clock, kClock, 0, 0, 0},
  };
  const long expected = (long)kThreads * kIters;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    pthread_t t[kThreads];
    for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, worker, &kinds[k]) == 0);
    for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_join(t[i], NULL) == 0);
    long errors = atomic_load(&kinds[k].errors);
    printf("%s: count=%ld expected=%ld errors=%ld\n", kinds[k].name, kinds[k].counter, expected, errors);
    if (kinds[k].counter != expected || errors != 0) {
      printf("FAIL %s\n", kinds[k].name);
      atomic_fetch_add(&g_failures, 1);
    }
    /* Every kind is unlocked again and can be destroyed. */
    int rc = pthread_mutex_destroy(kinds[k].m);
    if (rc != 0) {
      printf("FAIL %s: destroy=%s\n", kinds[k].name, err_name(rc));
      atomic_fetch_add(&g_failures, 1);
    }
  }
  free(m_heap_zero);
  return sync_finish("mutex_kinds");
}
