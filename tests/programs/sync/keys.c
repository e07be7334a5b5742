/* keys — pthread_key_create/setspecific and thread-exit destructors.
 *
 * 16 threads each set values for three keys: `counted` (destructor runs once
 * per thread and receives the thread's own value), `nullval` (value set back
 * to NULL before exit: destructor must not run) and `resetter` (destructor
 * sets the value again every time, so glibc calls it
 * PTHREAD_DESTRUCTOR_ITERATIONS times per thread).  A fresh thread sees NULL
 * for every key.  A key deleted while threads hold values runs no destructor,
 * and a key created in its place reads NULL.  Finally keys are created until
 * EAGAIN (at most PTHREAD_KEYS_MAX in all), all deleted, and one more create
 * succeeds.  MNP-CHECK keys_created reports how many the loop created (it
 * depends on how many keys the process already used).
 *
 * Failure: wrong destructor counts, a destructor given a wrong value, a
 * non-NULL initial value, no EAGAIN, or a create failing after the cleanup. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "sync_util.h"

enum { kThreads = 16 };

static pthread_key_t counted, nullval, resetter, deleted;
static atomic_int counted_calls, counted_bad_value, nullval_calls, resetter_calls, deleted_calls;
static atomic_int initial_nonnull;

static void counted_dtor(void* v) {
  atomic_fetch_add(&counted_calls, 1);
  long n = (long)(intptr_t)v;
  if (n < 1000 || n >= 1000 + kThreads) atomic_fetch_add(&counted_bad_value, 1);
}
static void nullval_dtor(void* v) {
  (void)v;
  atomic_fetch_add(&nullval_calls, 1);
}
static void resetter_dtor(void* v) {
  atomic_fetch_add(&resetter_calls, 1);
  pthread_setspecific(resetter, v); /* again, every round */
}
static void deleted_dtor(void* v) {
  (void)v;
  atomic_fetch_add(&deleted_calls, 1);
}

static atomic_int phase1_set;
static atomic_int deleted_now;

static void* worker(void* arg) {
  long i = (long)(intptr_t)arg;
  if (pthread_getspecific(counted) || pthread_getspecific(nullval) || pthread_getspecific(resetter) ||
      pthread_getspecific(deleted))
    atomic_fetch_add(&initial_nonnull, 1);
  pthread_setspecific(counted, (void*)(intptr_t)(1000 + i));
  pthread_setspecific(nullval, (void*)1);
  pthread_setspecific(nullval, NULL);
  pthread_setspecific(resetter, (void*)2);
  pthread_setspecific(deleted, (void*)3);
  if ((intptr_t)pthread_getspecific(counted) != 1000 + i) atomic_fetch_add(&g_failures, 1);
  atomic_fetch_add(&phase1_set, 1);
  while (!atomic_load(&deleted_now)) usleep(1000);
  return NULL;
}

static void* fresh(void* arg) { return pthread_getspecific(*(pthread_key_t*)arg); }

int main(void) {
  mnp_report_shim();
  SYNC_CHECK(pthread_key_create(&counted, counted_dtor) == 0);
  SYNC_CHECK(pthread_key_create(&nullval, nullval_dtor) == 0);
  SYNC_CHECK(pthread_key_create(&resetter, resetter_dtor) == 0);
  SYNC_CHECK(pthread_key_create(&deleted, deleted_dtor) == 0);
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i) == 0);
  while (atomic_load(&phase1_set) < kThreads) usleep(1000);
  expect_err("key_delete_in_use", pthread_key_delete(deleted), 0);
  atomic_store(&deleted_now, 1);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  printf(
      "destructors: counted=%d (want %d) bad_value=%d nullval=%d resetter=%d (want %d) deleted=%d "
      "initial_nonnull=%d\n",
      atomic_load(&counted_calls), kThreads, atomic_load(&counted_bad_value), atomic_load(&nullval_calls),
      atomic_load(&resetter_calls), kThreads * PTHREAD_DESTRUCTOR_ITERATIONS, atomic_load(&deleted_calls),
      atomic_load(&initial_nonnull));
  SYNC_CHECK(atomic_load(&counted_calls) == kThreads && atomic_load(&counted_bad_value) == 0);
  SYNC_CHECK(atomic_load(&nullval_calls) == 0 && atomic_load(&deleted_calls) == 0);
  SYNC_CHECK(atomic_load(&resetter_calls) == kThreads * PTHREAD_DESTRUCTOR_ITERATIONS);
  SYNC_CHECK(atomic_load(&initial_nonnull) == 0);

  /* A key deleted while main has a value: a new key (maybe the same slot)
   * reads NULL, in main and in a fresh thread. */
  pthread_key_t k1, k2;
  SYNC_CHECK(pthread_key_create(&k1, NULL) == 0);
  pthread_setspecific(k1, (void*)42);
  SYNC_CHECK(pthread_key_delete(k1) == 0);
  SYNC_CHECK(pthread_key_create(&k2, NULL) == 0);
  printf("reused_key_value_null=%d\n", pthread_getspecific(k2) == NULL);
  SYNC_CHECK(pthread_getspecific(k2) == NULL);
  pthread_t f;
  void* fv = (void*)1;
  pthread_create(&f, NULL, fresh, &k2);
  pthread_join(f, &fv);
  printf("fresh_thread_value_null=%d\n", fv == NULL);
  SYNC_CHECK(fv == NULL);
  SYNC_CHECK(pthread_key_delete(k2) == 0);
  expect_err("key_delete_deleted", pthread_key_delete(k2), EINVAL);
  expect_err("setspecific_deleted", pthread_setspecific(k2, (void*)1), EINVAL);

  /* Exhaustion. */
  static pthread_key_t keys[PTHREAD_KEYS_MAX + 1];
  int created = 0, rc = 0;
  while (created <= PTHREAD_KEYS_MAX && (rc = pthread_key_create(&keys[created], NULL)) == 0) created++;
  expect_err("keys_exhausted", rc, EAGAIN);
  mnp_check("keys_created", created);
  /* counted, nullval and resetter are still in use. */
  printf("keys_created_within_max=%d\n", created > PTHREAD_KEYS_MAX / 2 && created <= PTHREAD_KEYS_MAX - 3);
  SYNC_CHECK(created > PTHREAD_KEYS_MAX / 2 && created <= PTHREAD_KEYS_MAX - 3);
  int del_errors = 0;
  for (int i = 0; i < created; i++) del_errors += pthread_key_delete(keys[i]) != 0;
  printf("keys_deleted_errors=%d\n", del_errors);
  SYNC_CHECK(del_errors == 0);
  pthread_key_t again;
  expect_err("create_after_delete_all", pthread_key_create(&again, NULL), 0);
  pthread_key_delete(again);
  return sync_finish("keys");
}
