/* mixed_waiters — G and non-G threads share one mutex and one condvar.
 *
 * Two threads are created by a constructor, before main: under the shim they
 * are plain kernel threads (the runtime starts at main), while the 8 threads
 * main creates are Gs.  All 10 use the same mutex and condvar:
 *   1. each adds 1 to a shared counter 20,000 times under the mutex;
 *   2. a token ring: 300 rounds in which the thread whose index equals
 *      token % 10 takes its turn (token++), then broadcasts; everyone else
 *      waits on the shared condvar — so Gs wake non-Gs and vice versa;
 *   3. each announces arrival (the last signals main through the same
 *      condvar) and waits for `go`; main broadcasts once and all 10 wake.
 * The constructor threads start on phase 1 at once; the ring waits for all.
 *
 * Failure: counter != 200,000, turns taken out of order (ring_errors), a
 * woken count other than 10, or a hang (a wake-up lost between a G and a
 * non-G waiter). */
#include <pthread.h>
#include <stdint.h>

#include "sync_util.h"

enum { kCtorThreads = 2, kMainThreads = 8, kAll = kCtorThreads + kMainThreads, kIncs = 20000, kRounds = 300 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;           /* guarded by mu */
static long token;             /* guarded by mu */
static int turns[kAll];        /* guarded by mu */
static int ring_errors;        /* guarded by mu */
static int arrived, go, woken; /* guarded by mu */

static void* participant(void* arg) {
  int me = (int)(intptr_t)arg;
  for (int i = 0; i < kIncs; i++) {
    pthread_mutex_lock(&mu);
    counter++;
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_lock(&mu);
  for (int r = 0; r < kRounds; r++) {
    while (token % kAll != me) pthread_cond_wait(&cv, &mu);
    if (token != (long)r * kAll + me) ring_errors++;
    turns[me]++;
    token++;
    pthread_cond_broadcast(&cv);
  }
  arrived++;
  pthread_cond_broadcast(&cv); /* main waits on the same condvar */
  while (!go) pthread_cond_wait(&cv, &mu);
  woken++;
  pthread_mutex_unlock(&mu);
  return NULL;
}

static pthread_t ctor_threads[kCtorThreads];
static int ctor_rc[kCtorThreads] = {-1, -1};

__attribute__((constructor)) static void start_before_main(void) {
  for (int i = 0; i < kCtorThreads; i++)
    ctor_rc[i] = pthread_create(&ctor_threads[i], NULL, participant, (void*)(intptr_t)i);
}

int main(void) {
  mnp_report_shim();
  for (int i = 0; i < kCtorThreads; i++) SYNC_CHECK(ctor_rc[i] == 0);
  pthread_t t[kMainThreads];
  for (int i = 0; i < kMainThreads; i++)
    SYNC_CHECK(pthread_create(&t[i], NULL, participant, (void*)(intptr_t)(kCtorThreads + i)) == 0);
  pthread_mutex_lock(&mu);
  while (arrived < kAll) pthread_cond_wait(&cv, &mu);
  go = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < kCtorThreads; i++) pthread_join(ctor_threads[i], NULL);
  for (int i = 0; i < kMainThreads; i++) pthread_join(t[i], NULL);
  int bad_turns = 0;
  for (int i = 0; i < kAll; i++) bad_turns += turns[i] != kRounds;
  printf("mixed_waiters: counter=%ld expected=%d token=%ld ring_errors=%d bad_turns=%d arrived=%d woken=%d\n", counter,
         kAll * kIncs, token, ring_errors, bad_turns, arrived, woken);
  SYNC_CHECK(counter == (long)kAll * kIncs && token == (long)kAll * kRounds && ring_errors == 0 && bad_turns == 0 &&
             woken == kAll);
  return sync_finish("mixed_waiters");
}
