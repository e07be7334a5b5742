/* rwlock — reader/writer exclusion and the rwlock error codes.
 *
 * Stress: 8 writers (2,000 write sections each) and 16 readers (5,000 read
 * sections each) on one rwlock.  Inside a write section the writer checks
 * readers == 0 and writers == 1 and rewrites all 16 slots of a table with the
 * next value; inside a read section a reader checks writers == 0 and that all
 * slots are equal.  Done once with the default kind and once with
 * PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP.
 *
 * Semantics: tryrdlock/trywrlock against a writer (EBUSY), trywrlock against
 * a reader (EBUSY), tryrdlock against a reader (0); wrlock and rdlock by the
 * thread holding the write lock (EDEADLK); timedrdlock/timedwrlock
 * (CLOCK_REALTIME) and clockrdlock/clockwrlock (CLOCK_MONOTONIC) time out 20 ms
 * ahead (ETIMEDOUT); invalid tv_nsec while contended (EINVAL); with
 * PREFER_WRITER_NONRECURSIVE a new reader's tryrdlock fails (EBUSY) while a
 * writer waits behind a reader, and the waiting writer gets the lock once the
 * reader leaves; getkind_np returns the kind.
 *
 * Failure: an exclusion violation counted in the stress (violations=N), a
 * torn table, a wrong final value, an unexpected error code, or a hang. */
#include <pthread.h>
#include <stdint.h>

#include "sync_util.h"

enum { kWriters = 8, kReaders = 16, kWriteIters = 2000, kReadIters = 5000, kSlots = 16 };

static pthread_rwlock_t g_rw;
static atomic_int g_readers, g_writers;
static atomic_long g_violations;
static long g_table[kSlots]; /* guarded by g_rw */

static void* writer(void* arg) {
  (void)arg;
  for (int i = 0; i < kWriteIters; i++) {
    if (pthread_rwlock_wrlock(&g_rw) != 0) {
      atomic_fetch_add(&g_violations, 1);
      continue;
    }
    int w = atomic_fetch_add(&g_writers, 1) + 1;
    if (w != 1 || atomic_load(&g_readers) != 0) atomic_fetch_add(&g_violations, 1);
    long next = g_table[0] + 1;
    for (int s = 0; s < kSlots; s++) {
      g_table[s] = next;
      if (s == kSlots / 2 && (i & 63) == 0) sched_yield();
    }
    atomic_fetch_sub(&g_writers, 1);
    pthread_rwlock_unlock(&g_rw);
  }
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  for (int i = 0; i < kReadIters; i++) {
    if (pthread_rwlock_rdlock(&g_rw) != 0) {
      atomic_fetch_add(&g_violations, 1);
      continue;
    }
    atomic_fetch_add(&g_readers, 1);
    if (atomic_load(&g_writers) != 0) atomic_fetch_add(&g_violations, 1);
    long first = g_table[0];
    if ((i & 127) == 0) sched_yield();
    for (int s = 1; s < kSlots; s++)
      if (g_table[s] != first) {
        atomic_fetch_add(&g_violations, 1);
        break;
      }
    atomic_fetch_sub(&g_readers, 1);
    pthread_rwlock_unlock(&g_rw);
  }
  return NULL;
}

static void stress(const char* name) {
  for (int s = 0; s < kSlots; s++) g_table[s] = 0;
  pthread_t w[kWriters], r[kReaders];
  for (int i = 0; i < kReaders; i++) SYNC_CHECK(pthread_create(&r[i], NULL, reader, NULL) == 0);
  for (int i = 0; i < kWriters; i++) SYNC_CHECK(pthread_create(&w[i], NULL, writer, NULL) == 0);
  for (int i = 0; i < kWriters; i++) pthread_join(w[i], NULL);
  for (int i = 0; i < kReaders; i++) pthread_join(r[i], NULL);
  long v = atomic_load(&g_violations);
  printf("%s: final=%ld expected=%d violations=%ld\n", name, g_table[0], kWriters * kWriteIters, v);
  SYNC_CHECK(g_table[0] == kWriters * kWriteIters && v == 0);
  atomic_store(&g_violations, 0);
}

/* Runs op on another thread against g_rw and returns its result. */
typedef int (*Op)(void);
static void* op_tramp(void* p) { return (void*)(intptr_t)((Op)p)(); }
static int on_other(Op op) {
  pthread_t t;
  void* r;
  pthread_create(&t, NULL, op_tramp, (void*)op);
  pthread_join(t, &r);
  return (int)(intptr_t)r;
}
static int try_rd(void) {
  int rc = pthread_rwlock_tryrdlock(&g_rw);
  if (rc == 0) pthread_rwlock_unlock(&g_rw);
  return rc;
}
static int try_wr(void) {
  int rc = pthread_rwlock_trywrlock(&g_rw);
  if (rc == 0) pthread_rwlock_unlock(&g_rw);
  return rc;
}
static int timed_rd(void) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 20);
  return pthread_rwlock_timedrdlock(&g_rw, &ts);
}
static int timed_wr(void) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 20);
  return pthread_rwlock_timedwrlock(&g_rw, &ts);
}
static int clock_rd(void) {
  struct timespec ts = deadline_ms(CLOCK_MONOTONIC, 20);
  return pthread_rwlock_clockrdlock(&g_rw, CLOCK_MONOTONIC, &ts);
}
static int clock_wr(void) {
  struct timespec ts = deadline_ms(CLOCK_MONOTONIC, 20);
  return pthread_rwlock_clockwrlock(&g_rw, CLOCK_MONOTONIC, &ts);
}
static int timed_wr_bad_nsec(void) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 1000);
  ts.tv_nsec = 1000000000L;
  return pthread_rwlock_timedwrlock(&g_rw, &ts);
}
static int timed_rd_bad_nsec(void) {
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 1000);
  ts.tv_nsec = -1;
  return pthread_rwlock_timedrdlock(&g_rw, &ts);
}

static void semantics(void) {
  SYNC_CHECK(pthread_rwlock_init(&g_rw, NULL) == 0);
  expect_err("wrlock", pthread_rwlock_wrlock(&g_rw), 0);
  expect_err("wrlock_relock", pthread_rwlock_wrlock(&g_rw), EDEADLK);
  expect_err("rdlock_while_writing", pthread_rwlock_rdlock(&g_rw), EDEADLK);
  expect_err("tryrdlock_vs_writer", on_other(try_rd), EBUSY);
  expect_err("trywrlock_vs_writer", on_other(try_wr), EBUSY);
  expect_err("timedrdlock_vs_writer", on_other(timed_rd), ETIMEDOUT);
  expect_err("timedwrlock_vs_writer", on_other(timed_wr), ETIMEDOUT);
  expect_err("clockrdlock_vs_writer", on_other(clock_rd), ETIMEDOUT);
  expect_err("clockwrlock_vs_writer", on_other(clock_wr), ETIMEDOUT);
  expect_err("timedwrlock_nsec_1e9", on_other(timed_wr_bad_nsec), EINVAL);
  expect_err("timedrdlock_nsec_minus1", on_other(timed_rd_bad_nsec), EINVAL);
  expect_err("wrunlock", pthread_rwlock_unlock(&g_rw), 0);

  expect_err("rdlock", pthread_rwlock_rdlock(&g_rw), 0);
  expect_err("tryrdlock_vs_reader", on_other(try_rd), 0);
  expect_err("trywrlock_vs_reader", on_other(try_wr), EBUSY);
  expect_err("timedwrlock_vs_reader", on_other(timed_wr), ETIMEDOUT);
  expect_err("clockwrlock_vs_reader", on_other(clock_wr), ETIMEDOUT);
  expect_err("rdlock_recursive", pthread_rwlock_rdlock(&g_rw), 0);
  expect_err("rdunlock", pthread_rwlock_unlock(&g_rw), 0);
  expect_err("rdunlock_2", pthread_rwlock_unlock(&g_rw), 0);
  expect_err("trywrlock_free", on_other(try_wr), 0);
  expect_err("destroy", pthread_rwlock_destroy(&g_rw), 0);
}

/* PREFER_WRITER_NONRECURSIVE: a waiting writer blocks new readers. */
static atomic_int g_writer_state; /* 1 = about to wrlock, 2 = holds it */
static void* waiting_writer(void* arg) {
  (void)arg;
  atomic_store(&g_writer_state, 1);
  int rc = pthread_rwlock_wrlock(&g_rw);
  atomic_store(&g_writer_state, 2);
  if (rc == 0) pthread_rwlock_unlock(&g_rw);
  return (void*)(intptr_t)rc;
}

static void prefer_writer(void) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  expect_err("attr_setkind_prefer_writer_nonrecursive",
             pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), 0);
  int kind = -1;
  pthread_rwlockattr_getkind_np(&a, &kind);
  printf("attr_getkind_is_prefer_writer_nonrecursive=%d\n", kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  expect_err("attr_setkind_bogus", pthread_rwlockattr_setkind_np(&a, 12345), EINVAL);
  SYNC_CHECK(pthread_rwlock_init(&g_rw, &a) == 0);
  pthread_rwlockattr_destroy(&a);

  expect_err("pw_rdlock", pthread_rwlock_rdlock(&g_rw), 0);
  expect_err("pw_tryrdlock_no_writer_waiting", on_other(try_rd), 0);
  pthread_t w;
  pthread_create(&w, NULL, waiting_writer, NULL);
  while (atomic_load(&g_writer_state) == 0) usleep(1000);
  usleep(50000); /* let the writer block in wrlock behind our read lock */
  printf("pw_writer_blocked=%d\n", atomic_load(&g_writer_state) == 1);
  expect_err("pw_tryrdlock_writer_waiting", on_other(try_rd), EBUSY);
  expect_err("pw_timedrdlock_writer_waiting", on_other(timed_rd), ETIMEDOUT);
  expect_err("pw_rdunlock", pthread_rwlock_unlock(&g_rw), 0);
  void* r;
  pthread_join(w, &r);
  expect_err("pw_writer_got_lock", (int)(intptr_t)r, 0);
  expect_err("pw_destroy", pthread_rwlock_destroy(&g_rw), 0);
}

int main(void) {
  mnp_report_shim();
  semantics();
  prefer_writer();

  SYNC_CHECK(pthread_rwlock_init(&g_rw, NULL) == 0);
  stress("stress_default");
  pthread_rwlock_destroy(&g_rw);

  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  SYNC_CHECK(pthread_rwlock_init(&g_rw, &a) == 0);
  stress("stress_prefer_writer_nonrecursive");
  pthread_rwlock_destroy(&g_rw);
  pthread_rwlockattr_destroy(&a);
  return sync_finish("rwlock");
}
