/* sem — POSIX semaphores: unnamed (private and pshared) and named.
 *
 * Semantics: trywait on 0 (EAGAIN), timedwait CLOCK_REALTIME 20 ms and
 * clockwait CLOCK_MONOTONIC 20 ms on 0 (ETIMEDOUT), invalid tv_nsec (EINVAL),
 * clockwait with an unsupported clock (EINVAL), post/getvalue/wait/destroy,
 * sem_init above SEM_VALUE_MAX (EINVAL), post at SEM_VALUE_MAX (EOVERFLOW).
 * Traffic: 8 posters post 10,000 times each on one semaphore while 8 waiters
 * take 10,000 each (final value 0); 8 ping-pong pairs each bounce 2,000 times
 * over two semaphores (pshared = 1 for half of them).  A named semaphore
 * /mnp_sync_sem_<pid> (O_CREAT|O_EXCL, then sem_unlink) carries 1,000 posts
 * from main to a thread that opened it by name itself.
 *
 * Failure: a wrong errno or value, wrong totals, or a hang (a lost post). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

#include "sync_util.h"

enum { kPosters = 8, kWaiters = 8, kPerThread = 10000, kPairs = 8, kPings = 2000, kNamedPosts = 1000 };

/* errno of a -1 result, or 0. */
static int e(int rc) { return rc == 0 ? 0 : errno; }

static sem_t traffic;
static atomic_long posted, taken;

static void* poster(void* arg) {
  (void)arg;
  for (int i = 0; i < kPerThread; i++) {
    if (sem_post(&traffic) != 0) atomic_fetch_add(&g_failures, 1);
    atomic_fetch_add(&posted, 1);
  }
  return NULL;
}
static void* waiter(void* arg) {
  (void)arg;
  for (int i = 0; i < kPerThread; i++) {
    int rc;
    while ((rc = sem_wait(&traffic)) != 0 && errno == EINTR) {
    }
    if (rc != 0) atomic_fetch_add(&g_failures, 1);
    atomic_fetch_add(&taken, 1);
  }
  return NULL;
}

typedef struct {
  sem_t ping, pong;
  long bounces;
} Pair;
static Pair pairs[kPairs];

static void* pinger(void* arg) {
  Pair* p = arg;
  for (int i = 0; i < kPings; i++) {
    sem_post(&p->ping);
    while (sem_wait(&p->pong) != 0) {
    }
  }
  return NULL;
}
static void* ponger(void* arg) {
  Pair* p = arg;
  for (int i = 0; i < kPings; i++) {
    while (sem_wait(&p->ping) != 0) {
    }
    p->bounces++;
    sem_post(&p->pong);
  }
  return NULL;
}

static char sem_name[64];
static void* named_waiter(void* arg) {
  (void)arg;
  sem_t* s = sem_open(sem_name, 0);
  if (s == SEM_FAILED) return (void*)-1;
  long got = 0;
  for (int i = 0; i < kNamedPosts; i++) got += sem_wait(s) == 0;
  sem_close(s);
  return (void*)(intptr_t)got;
}

int main(void) {
  mnp_report_shim();
  sem_t s;
  expect_err("init", e(sem_init(&s, 0, 0)), 0);
  expect_err("trywait_zero", e(sem_trywait(&s)), EAGAIN);
  struct timespec ts = deadline_ms(CLOCK_REALTIME, 20);
  expect_err("timedwait_realtime_20ms", e(sem_timedwait(&s, &ts)), ETIMEDOUT);
  ts = deadline_ms(CLOCK_MONOTONIC, 20);
  expect_err("clockwait_monotonic_20ms", e(sem_clockwait(&s, CLOCK_MONOTONIC, &ts)), ETIMEDOUT);
  ts = deadline_ms(CLOCK_REALTIME, 1000);
  ts.tv_nsec = 1000000000L;
  expect_err("timedwait_nsec_1e9", e(sem_timedwait(&s, &ts)), EINVAL);
  ts.tv_nsec = -1;
  expect_err("timedwait_nsec_minus1", e(sem_timedwait(&s, &ts)), EINVAL);
  ts = deadline_ms(CLOCK_MONOTONIC, 1000);
  expect_err("clockwait_bad_clock", e(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &ts)), EINVAL);
  expect_err("post", e(sem_post(&s)), 0);
  expect_err("post_2", e(sem_post(&s)), 0);
  int v = -1;
  sem_getvalue(&s, &v);
  printf("value_after_2_posts=%d\n", v);
  expect_err("wait", e(sem_wait(&s)), 0);
  expect_err("trywait", e(sem_trywait(&s)), 0);
  ts = deadline_ms(CLOCK_REALTIME, 20);
  sem_post(&s);
  expect_err("timedwait_available", e(sem_timedwait(&s, &ts)), 0);
  sem_getvalue(&s, &v);
  printf("value_after_waits=%d\n", v);
  SYNC_CHECK(v == 0);
  expect_err("destroy", e(sem_destroy(&s)), 0);
  expect_err("init_above_max", e(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1u)), EINVAL);
  expect_err("init_at_max", e(sem_init(&s, 0, SEM_VALUE_MAX)), 0);
  expect_err("post_overflow", e(sem_post(&s)), EOVERFLOW);
  sem_getvalue(&s, &v);
  printf("value_at_max=%d\n", v == SEM_VALUE_MAX);
  sem_destroy(&s);

  SYNC_CHECK(sem_init(&traffic, 0, 0) == 0);
  pthread_t p[kPosters], w[kWaiters];
  for (int i = 0; i < kWaiters; i++) pthread_create(&w[i], NULL, waiter, NULL);
  for (int i = 0; i < kPosters; i++) pthread_create(&p[i], NULL, poster, NULL);
  for (int i = 0; i < kPosters; i++) pthread_join(p[i], NULL);
  for (int i = 0; i < kWaiters; i++) pthread_join(w[i], NULL);
  sem_getvalue(&traffic, &v);
  printf("traffic: posted=%ld taken=%ld value=%d\n", atomic_load(&posted), atomic_load(&taken), v);
  SYNC_CHECK(atomic_load(&taken) == (long)kWaiters * kPerThread && v == 0);
  sem_destroy(&traffic);

  pthread_t a[kPairs], b[kPairs];
  for (int i = 0; i < kPairs; i++) {
    sem_init(&pairs[i].ping, i % 2, 0);
    sem_init(&pairs[i].pong, i % 2, 0);
    pthread_create(&a[i], NULL, pinger, &pairs[i]);
    pthread_create(&b[i], NULL, ponger, &pairs[i]);
  }
  long bounces = 0;
  for (int i = 0; i < kPairs; i++) {
    pthread_join(a[i], NULL);
    pthread_join(b[i], NULL);
    bounces += pairs[i].bounces;
    sem_destroy(&pairs[i].ping);
    sem_destroy(&pairs[i].pong);
  }
  printf("pingpong: pairs=%d bounces=%ld\n", kPairs, bounces);
  SYNC_CHECK(bounces == (long)kPairs * kPings);

  snprintf(sem_name, sizeof sem_name, "/mnp_sync_sem_%ld", (long)getpid());
  sem_t* named = sem_open(sem_name, O_CREAT | O_EXCL, 0600, 0);
  printf("named_open=%d\n", named != SEM_FAILED);
  if (named == SEM_FAILED) {
    atomic_fetch_add(&g_failures, 1);
  } else {
    pthread_t nw;
    pthread_create(&nw, NULL, named_waiter, NULL);
    for (int i = 0; i < kNamedPosts; i++) {
      sem_post(named);
      if (i % 100 == 0) sched_yield();
    }
    void* got;
    pthread_join(nw, &got);
    printf("named: received=%ld\n", (long)(intptr_t)got);
    SYNC_CHECK((long)(intptr_t)got == kNamedPosts);
    expect_err("named_unlink", e(sem_unlink(sem_name)), 0);
    expect_err("named_close", e(sem_close(named)), 0);
    expect_err("named_open_after_unlink", sem_open(sem_name, 0) == SEM_FAILED ? errno : 0, ENOENT);
  }
  return sync_finish("sem");
}
