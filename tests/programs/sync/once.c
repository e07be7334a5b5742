/* once — pthread_once runs its routine exactly once, and again after a cancel.
 *
 * Part 1: 64 threads start together (a spin gate) and race pthread_once on one
 * control whose routine sleeps 10 ms; the routine must run exactly once and
 * every caller must return only after it finished (it sees done == 1).
 *
 * Part 2: the routine of a second control cancels its first caller from inside
 * (pthread_cancel(pthread_self()) + pthread_testcancel, deferred mode); while
 * that caller is inside, a second thread is already waiting in pthread_once.
 * The cancellation resets the control, so the waiting thread runs the routine
 * (second call) and completes it; a third caller does not run it.  The
 * cancelled thread's join value must be PTHREAD_CANCELED.
 *
 * Failure: init_calls != 1, a caller returning before the routine finished,
 * the waiting thread hanging after the cancel, or wrong call counts. */
#include <pthread.h>

#include "sync_util.h"

enum { kThreads = 64 };

static pthread_once_t once1 = PTHREAD_ONCE_INIT;
static atomic_int init1_calls, init1_done, gate, early_return;

static void init1(void) {
  atomic_fetch_add(&init1_calls, 1);
  usleep(10000);
  atomic_store(&init1_done, 1);
}

static void* racer(void* arg) {
  (void)arg;
  while (!atomic_load(&gate)) sched_yield();
  if (pthread_once(&once1, init1) != 0) atomic_fetch_add(&g_failures, 1);
  if (!atomic_load(&init1_done)) atomic_fetch_add(&early_return, 1);
  return NULL;
}

static pthread_once_t once2 = PTHREAD_ONCE_INIT;
static atomic_int init2_calls, init2_done, first_inside, second_started;

static void init2(void) {
  int call = atomic_fetch_add(&init2_calls, 1) + 1;
  if (call == 1) {
    atomic_store(&first_inside, 1);
    while (!atomic_load(&second_started)) usleep(1000);
    usleep(20000); /* let the second caller block in pthread_once */
    pthread_cancel(pthread_self());
    pthread_testcancel(); /* does not return */
    atomic_fetch_add(&g_failures, 1);
    return;
  }
  atomic_store(&init2_done, 1);
}

static void* first_caller(void* arg) {
  (void)arg;
  pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
  pthread_once(&once2, init2);
  return (void*)1; /* not reached */
}

static void* second_caller(void* arg) {
  (void)arg;
  while (!atomic_load(&first_inside)) usleep(1000);
  atomic_store(&second_started, 1);
  int rc = pthread_once(&once2, init2);
  return (void*)(long)(rc == 0 && atomic_load(&init2_done) == 1);
}

int main(void) {
  mnp_report_shim();
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) SYNC_CHECK(pthread_create(&t[i], NULL, racer, NULL) == 0);
  atomic_store(&gate, 1);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  printf("once_race: callers=%d init_calls=%d early_return=%d\n", kThreads, atomic_load(&init1_calls),
         atomic_load(&early_return));
  SYNC_CHECK(atomic_load(&init1_calls) == 1 && atomic_load(&early_return) == 0);
  SYNC_CHECK(pthread_once(&once1, init1) == 0 && atomic_load(&init1_calls) == 1);

  pthread_t a, b;
  void *ra, *rb;
  pthread_create(&a, NULL, first_caller, NULL);
  pthread_create(&b, NULL, second_caller, NULL);
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  printf("once_cancel: first_cancelled=%d second_ran_init=%d init_calls=%d\n", ra == PTHREAD_CANCELED, rb == (void*)1,
         atomic_load(&init2_calls));
  SYNC_CHECK(ra == PTHREAD_CANCELED && rb == (void*)1 && atomic_load(&init2_calls) == 2);
  pthread_once(&once2, init2);
  printf("once_cancel: after_third_call init_calls=%d\n", atomic_load(&init2_calls));
  SYNC_CHECK(atomic_load(&init2_calls) == 2);
  return sync_finish("once");
}
