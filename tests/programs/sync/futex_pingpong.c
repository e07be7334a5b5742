/* futex_pingpong — raw futex(2) calls made directly with syscall(SYS_futex).
 *
 * Covers: a FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE ping-pong of 100,000 round
 * trips between two threads; FUTEX_WAIT with a mismatching value (EAGAIN);
 * FUTEX_WAIT with a 10 ms relative timeout (ETIMEDOUT); FUTEX_WAIT_BITSET with
 * an absolute CLOCK_MONOTONIC deadline (ETIMEDOUT) and with bitset 0
 * (EINVAL); FUTEX_WAKE with no waiters (0); FUTEX_CMP_REQUEUE of 8 waiters
 * from word a to word b (returns 8 = 0 woken + 8 requeued; a mismatching val3
 * gives EAGAIN), then FUTEX_WAKE on b wakes 3 and then 5; FUTEX_REQUEUE of 2
 * of 4 waiters (2 on b, 2 left on a); FUTEX_WAKE_OP (set b = 5 and wake one
 * waiter on each word: 2), and a WAKE_OP whose comparison fails (0).
 *
 * Determinism: before each requeue/wake the waker waits until every waiter
 * has announced itself and then sleeps 100 ms so that all of them are inside
 * FUTEX_WAIT; waiters re-check their word in a loop, so any early or
 * spurious return (EINTR) is harmless for completion, though it would change
 * a printed count.  Every waiter must eventually return (woken counts).
 *
 * Failure: a wrong return value or errno, a lost wake-up (hang), or a waiter
 * that never finishes. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "sync_util.h"

enum { kRoundTrips = 100000 };

static long futex(atomic_int* uaddr, int op, int val, const struct timespec* ts, atomic_int* uaddr2, int val3) {
  return syscall(SYS_futex, (int*)uaddr, op, val, ts, (int*)uaddr2, val3);
}
/* Result as an errno name source: 0..N for success counts, -errno on error. */
static long fr(long rc) { return rc >= 0 ? rc : -errno; }

static void print_rc(const char* name, long got, long want) {
  if (got < 0) printf("%s=%s\n", name, err_name((int)-got));
  else printf("%s=%ld\n", name, got);
  if (got != want) {
    printf("FAIL %s: got %ld want %ld\n", name, got, want);
    atomic_fetch_add(&g_failures, 1);
  }
}

/* ---- ping-pong: word = 0 (A's turn) or 1 (B's turn) ---- */
static atomic_int turn;
static long a_rounds, b_rounds;

static void* side(void* arg) {
  int me = (int)(intptr_t)arg;
  long* rounds = me == 0 ? &a_rounds : &b_rounds;
  for (int i = 0; i < kRoundTrips; i++) {
    while (atomic_load(&turn) != me) futex(&turn, FUTEX_WAIT_PRIVATE, 1 - me, NULL, NULL, 0);
    (*rounds)++;
    atomic_store(&turn, 1 - me);
    futex(&turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  return NULL;
}

/* ---- requeue ---- */
static atomic_int word_a, word_b, announced, finished;

static void* waiter_on_a(void* arg) {
  (void)arg;
  atomic_fetch_add(&announced, 1);
  while (atomic_load(&word_a) == 0) futex(&word_a, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  atomic_fetch_add(&finished, 1);
  return NULL;
}
static void* waiter_on_b(void* arg) {
  (void)arg;
  atomic_fetch_add(&announced, 1);
  while (atomic_load(&word_b) == 0) futex(&word_b, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  atomic_fetch_add(&finished, 1);
  return NULL;
}

static void start(pthread_t* t, int n, void* (*fn)(void*)) {
  atomic_store(&announced, 0);
  atomic_store(&finished, 0);
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, fn, NULL);
  while (atomic_load(&announced) < n) usleep(1000);
  usleep(100000); /* all n are now blocked in FUTEX_WAIT */
}

static void finish(pthread_t* t, int n) {
  /* Release any waiter left on either word, then join. */
  atomic_store(&word_a, 1);
  atomic_store(&word_b, 1);
  futex(&word_a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  futex(&word_b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  atomic_store(&word_a, 0);
  atomic_store(&word_b, 0);
}

int main(void) {
  mnp_report_shim();

  /* Single-thread error paths. */
  atomic_int w = 7;
  print_rc("wait_value_mismatch", fr(futex(&w, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0)), -EAGAIN);
  struct timespec rel = {0, 10 * 1000 * 1000};
  print_rc("wait_relative_10ms", fr(futex(&w, FUTEX_WAIT_PRIVATE, 7, &rel, NULL, 0)), -ETIMEDOUT);
  struct timespec abs = deadline_ms(CLOCK_MONOTONIC, 10);
  print_rc("wait_bitset_abs_monotonic", fr(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 7, &abs, NULL, FUTEX_BITSET_MATCH_ANY)),
           -ETIMEDOUT);
  abs = deadline_ms(CLOCK_REALTIME, 10);
  print_rc("wait_bitset_abs_realtime",
           fr(futex(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &abs, NULL, FUTEX_BITSET_MATCH_ANY)),
           -ETIMEDOUT);
  print_rc("wait_bitset_zero", fr(futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 7, &abs, NULL, 0)), -EINVAL);
  print_rc("wake_no_waiters", fr(futex(&w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)), 0);

  /* Ping-pong. */
  pthread_t pa, pb;
  pthread_create(&pa, NULL, side, (void*)0);
  pthread_create(&pb, NULL, side, (void*)1);
  pthread_join(pa, NULL);
  pthread_join(pb, NULL);
  printf("pingpong: a=%ld b=%ld\n", a_rounds, b_rounds);
  SYNC_CHECK(a_rounds == kRoundTrips && b_rounds == kRoundTrips && atomic_load(&turn) == 0);

  /* FUTEX_CMP_REQUEUE: 8 waiters on a, all moved to b. */
  pthread_t t[8];
  start(t, 8, waiter_on_a);
  print_rc("cmp_requeue_val3_mismatch",
           fr(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 0, (struct timespec*)(long)INT_MAX, &word_b, 1)), -EAGAIN);
  print_rc("cmp_requeue_8",
           fr(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 0, (struct timespec*)(long)INT_MAX, &word_b, 0)), 8);
  atomic_store(&word_a, 1); /* woken waiters leave */
  print_rc("wake_a_after_requeue", fr(futex(&word_a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)), 0);
  print_rc("wake_b_3", fr(futex(&word_b, FUTEX_WAKE_PRIVATE, 3, NULL, NULL, 0)), 3);
  print_rc("wake_b_rest", fr(futex(&word_b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)), 5);
  finish(t, 8);
  printf("cmp_requeue_finished=%d\n", atomic_load(&finished));
  SYNC_CHECK(atomic_load(&finished) == 8);

  /* FUTEX_REQUEUE: 4 waiters on a, 2 moved to b (wake none). */
  start(t, 4, waiter_on_a);
  print_rc("requeue_2_of_4", fr(futex(&word_a, FUTEX_REQUEUE_PRIVATE, 0, (struct timespec*)(long)2, &word_b, 0)), 2);
  atomic_store(&word_a, 1);
  print_rc("wake_b_requeued", fr(futex(&word_b, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)), 2);
  print_rc("wake_a_left", fr(futex(&word_a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0)), 2);
  finish(t, 4);
  printf("requeue_finished=%d\n", atomic_load(&finished));
  SYNC_CHECK(atomic_load(&finished) == 4);

  /* FUTEX_WAKE_OP: one waiter on a, one on b.  Op: b = 5; if old b == 0 also
   * wake one on b. */
  pthread_t wa, wb;
  atomic_store(&announced, 0);
  atomic_store(&finished, 0);
  pthread_create(&wa, NULL, waiter_on_a, NULL);
  pthread_create(&wb, NULL, waiter_on_b, NULL);
  while (atomic_load(&announced) < 2) usleep(1000);
  usleep(100000);
  atomic_store(&word_a, 1);
  print_rc("wake_op_both",
           fr(futex(&word_a, FUTEX_WAKE_OP_PRIVATE, 1, (struct timespec*)(long)1, &word_b,
                    FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0))),
           2);
  pthread_join(wa, NULL);
  pthread_join(wb, NULL);
  printf("wake_op: b=%d finished=%d\n", atomic_load(&word_b), atomic_load(&finished));
  SYNC_CHECK(atomic_load(&word_b) == 5 && atomic_load(&finished) == 2);
  print_rc("wake_op_cmp_false",
           fr(futex(&word_a, FUTEX_WAKE_OP_PRIVATE, 0, (struct timespec*)(long)1, &word_b,
                    FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_EQ, 0))),
           0);
  printf("wake_op: b_after_add=%d\n", atomic_load(&word_b));
  SYNC_CHECK(atomic_load(&word_b) == 7);
  return sync_finish("futex_pingpong");
}
