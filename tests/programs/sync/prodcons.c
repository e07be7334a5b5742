/* prodcons — a bounded queue built from one mutex and two condvars.
 *
 * Capacity 64; 16 producers and 16 consumers; 200,000 items, the values
 * 0..199,999, producer p producing p, p+16, p+32, ...  Consumers take until
 * they see one of the 16 sentinels (-1) that main pushes after joining the
 * producers.  Every value must be consumed exactly once: checked with a
 * per-value seen-count, the total count and a checksum (sum of v*v mod 2^64)
 * compared with the value computed directly.
 *
 * Failure: a lost or duplicated item (count/seen/checksum mismatch), a queue
 * overrun (size outside 0..64 inside the lock), or a hang (a lost wakeup). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "sync_util.h"

enum { kCap = 64, kProducers = 16, kConsumers = 16, kItems = 200000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long queue[kCap]; /* guarded by mu */
static int head, size;   /* guarded by mu */
static unsigned char seen[kItems];
static atomic_long consumed;
static atomic_ullong checksum;

static void put(long v) {
  pthread_mutex_lock(&mu);
  while (size == kCap) pthread_cond_wait(&not_full, &mu);
  queue[(head + size) % kCap] = v;
  size++;
  SYNC_CHECK(size >= 1 && size <= kCap);
  pthread_cond_signal(&not_empty);
  pthread_mutex_unlock(&mu);
}

static long take(void) {
  pthread_mutex_lock(&mu);
  while (size == 0) pthread_cond_wait(&not_empty, &mu);
  long v = queue[head];
  head = (head + 1) % kCap;
  size--;
  SYNC_CHECK(size >= 0 && size < kCap);
  pthread_cond_signal(&not_full);
  pthread_mutex_unlock(&mu);
  return v;
}

static void* producer(void* arg) {
  for (long v = (long)(intptr_t)arg; v < kItems; v += kProducers) put(v);
  return NULL;
}

static void* consumer(void* arg) {
  (void)arg;
  for (;;) {
    long v = take();
    if (v < 0) return NULL;
    if (v >= kItems) {
      atomic_fetch_add(&g_failures, 1);
      continue;
    }
    __atomic_fetch_add(&seen[v], 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&consumed, 1);
    atomic_fetch_add(&checksum, (unsigned long long)v * (unsigned long long)v);
  }
}

int main(void) {
  mnp_report_shim();
  pthread_t p[kProducers], c[kConsumers];
  for (int i = 0; i < kConsumers; i++) SYNC_CHECK(pthread_create(&c[i], NULL, consumer, NULL) == 0);
  for (int i = 0; i < kProducers; i++) SYNC_CHECK(pthread_create(&p[i], NULL, producer, (void*)(intptr_t)i) == 0);
  for (int i = 0; i < kProducers; i++) pthread_join(p[i], NULL);
  for (int i = 0; i < kConsumers; i++) put(-1);
  for (int i = 0; i < kConsumers; i++) pthread_join(c[i], NULL);

  unsigned long long expect_sum = 0;
  long once = 0;
  for (long v = 0; v < kItems; v++) {
    expect_sum += (unsigned long long)v * (unsigned long long)v;
    once += seen[v] == 1;
  }
  long n = atomic_load(&consumed);
  unsigned long long sum = atomic_load(&checksum);
  printf("prodcons: consumed=%ld expected=%d exactly_once=%ld checksum=%llu expected=%llu left=%d\n", n, kItems, once,
         sum, expect_sum, size);
  SYNC_CHECK(n == kItems && once == kItems && sum == expect_sum && size == 0);
  return sync_finish("prodcons");
}
