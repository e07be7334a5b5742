/* wait_stress — thousands of threads in every kind of wait the shim
 * implements at once, with signals whose handlers call the shim, and CPU
 * hogs that get preempted (issue 8, item 6: "no deadlock in the runtime's
 * own waits"; and "a sleep must never end early").
 *
 *   wait_stress [THREADS [ROUNDS [ITERATIONS [watchdog-seconds]]]]
 *
 * THREADS (default 2,000, a multiple of 4, 64 KiB stacks) form groups of 4.
 * Each group runs ROUNDS rounds (default 22); a round starts at the group's
 * barrier and then every member does the round's operation, which rotates
 * with the round and the group, so at any moment different groups are in
 * different waits:
 *   cond ring      a token passed twice round the group with pthread_cond_
 *                  signal, waited for with cond_wait, timedwait and
 *                  clockwait;
 *   cond broadcast three members wait for a generation change, the fourth
 *                  waits for them to arrive and broadcasts;
 *   sem ring       the same ring over sem_post and sem_wait, sem_timedwait,
 *                  sem_clockwait and sem_trywait + sched_yield;
 *   futex ring     the same over syscall(SYS_futex) WAIT/WAKE (private; in
 *                  a few groups shared, which the shim hands to the kernel),
 *                  untimed, relative timeout and absolute WAIT_BITSET;
 *   pipes          one member writes three bytes, the others poll/ppoll for
 *                  them (with and without timeouts), read one each and
 *                  write it back on a second pipe, read by the first;
 *   rwlock         rd/wr/try/timed/clock locks of the group's rwlock
 *                  (writer-preferring in odd groups), readers check that
 *                  the writers' two counters agree;
 *   join           each member creates a short-lived child and joins it with
 *                  join, timedjoin, clockjoin or tryjoin + sched_yield;
 *   once           all four call pthread_once on the round's once object,
 *                  whose routine sleeps;
 *   sleeps         nanosleep, usleep, clock_nanosleep relative and
 *                  TIMER_ABSTIME on CLOCK_MONOTONIC and CLOCK_REALTIME;
 *   mutexes        global normal, recursive and errorcheck mutexes,
 *                  timedlock, clocklock and trylock, the mutex a CPU hog
 *                  holds while it is preempted, and the mutex the signal
 *                  handlers trylock;
 *   pool           a counting semaphore of 8 taken with every sem wait kind.
 * Meanwhile 4 hog threads compute for 12 ms stretches (longer than the
 * shim's time slice), half of them holding a mutex the workers want, and
 * a signaller sends SIGUSR1 (SA_RESTART) to random workers with
 * pthread_kill and SIGUSR2 (no SA_RESTART) to the process with kill. The
 * handlers call async-signal-safe functions the shim interposes: sem_post
 * (a consumer thread waits on that semaphore), write (to a pipe a drainer
 * thread reads), pthread_mutex_trylock/unlock, nanosleep, clock_gettime,
 * getpid, kill(getpid(), 0), raise and sigprocmask. Every blocking call
 * retries on EINTR, as programs must.
 *
 * Invariants, checked at the end of each iteration: every counter kept
 * under a lock equals the total the deterministic schedule implies (or the
 * count of successful timed/try acquisitions); no two pool holders beyond
 * 8; every once routine ran exactly once per object; children returned
 * their values; the handlers' sem_post and write counts equal what the
 * consumer and drainer got; and no sleep or timed wait ended early: each
 * sleep lasted at least its duration on CLOCK_MONOTONIC, each TIMER_ABSTIME
 * sleep and each ETIMEDOUT of an absolute timed wait returned at or after
 * the deadline on the clock it names, each relative timeout (futex, poll)
 * lasted at least its length.
 *
 * stdout: the totals the schedule fixes and "ok" lines (identical natively
 * and under the shim); FAIL lines and exit 1 on a broken invariant. A hang
 * is ended by alarm() with SIGALRM's default action (death by signal 14,
 * which the runner reports), 60 s per iteration unless given. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum {
  kGroup = 4,
  kMaxRounds = 64,
  kGlobalMutexes = 8,
  kRecMutexes = 4,
  kErrMutexes = 4,
  kPool = 8,
  kHogs = 4,
  kHogStretches = 6,
  kHogStretchMs = 12,
  kStack = 64 * 1024,
};

enum Op {
  kOpCondRing,
  kOpCondBcast,
  kOpSemRing,
  kOpFutexRing,
  kOpPipe,
  kOpRwlock,
  kOpJoin,
  kOpOnce,
  kOpSleep,
  kOpMutex,
  kOpPool,
  kOps
};

/* ---- failures ----------------------------------------------------------- */

static atomic_int g_failures;

#define CHECK(cond)                                          \
  do {                                                       \
    if (!(cond)) {                                           \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      fflush(stdout);                                        \
      atomic_fetch_add(&g_failures, 1);                      \
    }                                                        \
  } while (0)

/* ---- time ------------------------------------------------------------------ */

static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec* ts) { return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec; }

static struct timespec ns_ts(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  return ts;
}

/* Absolute deadline us microseconds from now on clock c. */
static struct timespec abs_in(clockid_t c, int64_t us) { return ns_ts(now_ns(c) + us * 1000); }

/* Early ends of sleeps and timed waits (must stay 0) and how many were
 * checked (stderr only: timeouts are not deterministic). */
static atomic_long g_early, g_timed_checked;

static void early(const char* what, int64_t short_by_ns) {
  atomic_fetch_add(&g_early, 1);
  printf("FAIL %s ended %lld ns before its deadline\n", what, (long long)short_by_ns);
  fflush(stdout);
  atomic_fetch_add(&g_failures, 1);
}

/* After a wait that gave up at absolute time abs on clock c. */
static void check_deadline_passed(clockid_t c, const struct timespec* abs, const char* what) {
  int64_t now = now_ns(c);
  atomic_fetch_add(&g_timed_checked, 1);
  if (now < ts_ns(abs)) early(what, ts_ns(abs) - now);
}

/* After a wait of at least want_ns that started at t0 (CLOCK_MONOTONIC). */
static void check_elapsed(int64_t t0, int64_t want_ns, const char* what) {
  int64_t el = now_ns(CLOCK_MONOTONIC) - t0;
  atomic_fetch_add(&g_timed_checked, 1);
  if (el < want_ns) early(what, want_ns - el);
}

/* ---- per-thread random numbers (deterministic per thread) ---------------- */

typedef struct {
  uint64_t s;
} Rng;

static uint32_t rnd(Rng* r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 16);
}

/* ---- shared state -------------------------------------------------------- */

typedef struct {
  pthread_barrier_t bar;
  pthread_mutex_t mu; /* guards everything below but the sems, words, pipes and rwlock data */
  pthread_cond_t cv[kGroup];
  int owner; /* cond ring: whose turn */
  pthread_cond_t arrive_cv, bcast_cv;
  clockid_t cv_clock; /* of arrive_cv and bcast_cv */
  int arrived, gen;
  long ring_passes, bcasts, bcast_woken, sem_passes, futex_passes, pipe_bytes, children;
  sem_t sem[kGroup];
  atomic_uint fx[kGroup];
  int pa[2], pb[2]; /* pipes: a carries 3 bytes out, b brings them back */
  pthread_rwlock_t rw;
  long ra, rb; /* written only under rw's write lock */
  atomic_long rw_writes, rw_torn;
  pthread_once_t once[kMaxRounds];
  int once_hits[kMaxRounds];
} Group;

static int g_threads = 2000, g_rounds = 22, g_iterations = 1, g_watchdog = 60;
static int g_ngroups;
static Group* g_groups;

static pthread_mutex_t g_nmu[kGlobalMutexes];
static long g_ncount[kGlobalMutexes]; /* under g_nmu[k] */
static atomic_long g_n_locked, g_n_extra;
static pthread_mutex_t g_rmu[kRecMutexes];
static long g_rcount[kRecMutexes];
static atomic_long g_r_locked;
static pthread_mutex_t g_emu[kErrMutexes];
static long g_ecount[kErrMutexes];
static atomic_long g_e_locked;
static pthread_mutex_t g_hog_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_hog_count; /* under g_hog_mu */
static atomic_long g_hog_locked, g_hog_stretches;
static sem_t g_pool;
static atomic_int g_pool_in;
static atomic_long g_pool_acquired, g_pool_over;
static atomic_long g_once_runs, g_children_ok, g_sleeps;
static __thread int tl_once_group, tl_once_round;

/* Signals. */
static pthread_mutex_t g_h_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_h_protected; /* under g_h_mu, by handlers (trylock) and workers */
static atomic_long g_h_locked, g_w_hmu;
static atomic_long g_h_runs, g_h_write_dropped;
static sem_t g_h_sem;
static int g_h_pipe[2];
static atomic_long g_consumed, g_drained;
static atomic_int g_stop_signals, g_stop_aux;
static atomic_long g_sent;
static pthread_t* g_tids;
/* Workers stay (parked on g_gate_cv) until the signaller has stopped, so
 * that it never names a thread that was joined. */
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;
static int g_running, g_released; /* under g_gate_mu */

static void lock_ok(pthread_mutex_t* m) {
  int rc = pthread_mutex_lock(m);
  if (rc != 0) {
    printf("FAIL pthread_mutex_lock: %d\n", rc);
    atomic_fetch_add(&g_failures, 1);
  }
}
static void unlock_ok(pthread_mutex_t* m) {
  int rc = pthread_mutex_unlock(m);
  if (rc != 0) {
    printf("FAIL pthread_mutex_unlock: %d\n", rc);
    atomic_fetch_add(&g_failures, 1);
  }
}

/* ---- signal handlers ------------------------------------------------------- */

static void handler(int sig) {
  int saved = errno;
  long n = atomic_fetch_add(&g_h_runs, 1);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (getpid() <= 0) atomic_fetch_add(&g_failures, 1);
  sem_post(&g_h_sem);
  char c = 's';
  if (write(g_h_pipe[1], &c, 1) != 1) atomic_fetch_add(&g_h_write_dropped, 1);
  if (pthread_mutex_trylock(&g_h_mu) == 0) {
    g_h_protected++;
    atomic_fetch_add(&g_h_locked, 1);
    pthread_mutex_unlock(&g_h_mu);
  }
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, sig == SIGUSR1 ? SIGUSR2 : SIGUSR1);
  sigprocmask(SIG_BLOCK, &s, &old);
  if (n % 8 == 0) {
    struct timespec d = {0, 20000};
    nanosleep(&d, NULL); /* EINTR is fine here */
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (n % 16 == 0) kill(getpid(), 0);
  if (sig == SIGUSR1 && n % 32 == 0) raise(SIGUSR2);
  errno = saved;
}

/* Sends signals until told to stop. */
static void* signaller(void* arg) {
  (void)arg;
  Rng r = {0x9e3779b97f4a7c15ULL};
  while (!atomic_load(&g_stop_signals)) {
    struct timespec d = {0, 150000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
    int i = (int)(rnd(&r) % (uint32_t)g_threads);
    int rc = pthread_kill(g_tids[i], SIGUSR1);
    if (rc != 0) {
      printf("FAIL pthread_kill: %d\n", rc);
      atomic_fetch_add(&g_failures, 1);
    }
    if (rnd(&r) % 4 == 0) kill(getpid(), SIGUSR2);
    atomic_fetch_add(&g_sent, 1);
  }
  return NULL;
}

/* Takes what the handlers post. */
static void* consumer(void* arg) {
  (void)arg;
  for (;;) {
    if (sem_wait(&g_h_sem) != 0) {
      CHECK(errno == EINTR);
      continue;
    }
    if (atomic_load(&g_stop_aux)) return NULL; /* the stop post is not counted */
    atomic_fetch_add(&g_consumed, 1);
  }
}

/* Reads what the handlers write; 'x' from main ends it. */
static void* drainer(void* arg) {
  (void)arg;
  char buf[256];
  for (;;) {
    ssize_t n = read(g_h_pipe[0], buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {g_h_pipe[0], POLLIN, 0};
        poll(&p, 1, -1);
        continue;
      }
      CHECK(0);
      return NULL;
    }
    int end = 0;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == 'x') end = 1;
      else atomic_fetch_add(&g_drained, 1);
    }
    if (end) return NULL;
  }
}

/* ---- CPU hogs ------------------------------------------------------------ */

static volatile uint64_t g_sink;

static void compute_ms(int ms) {
  int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)ms * 1000000;
  uint64_t x = 1;
  do {
    for (int i = 0; i < 20000; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    g_sink = x;
  } while (now_ns(CLOCK_MONOTONIC) < end);
}

static void* hog(void* arg) {
  long id = (long)(intptr_t)arg;
  for (int i = 0; i < kHogStretches; i++) {
    if (id % 2 == 0) {
      lock_ok(&g_hog_mu);
      compute_ms(kHogStretchMs); /* preempted while holding it */
      g_hog_count++;
      unlock_ok(&g_hog_mu);
    } else {
      compute_ms(kHogStretchMs);
    }
    atomic_fetch_add(&g_hog_stretches, 1);
    struct timespec d = {0, 2000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
  }
  return NULL;
}

/* ---- waits with every flavour ------------------------------------------- */

static void sem_wait_any(sem_t* s, Rng* r) {
  switch (rnd(r) % 4) {
    case 0:
      while (sem_wait(s) != 0) CHECK(errno == EINTR);
      return;
    case 1:
      for (;;) {
        struct timespec abs = abs_in(CLOCK_REALTIME, 200 + rnd(r) % 3000);
        if (sem_timedwait(s, &abs) == 0) return;
        if (errno == ETIMEDOUT) check_deadline_passed(CLOCK_REALTIME, &abs, "sem_timedwait");
        else CHECK(errno == EINTR);
      }
    case 2:
      for (;;) {
        struct timespec abs = abs_in(CLOCK_MONOTONIC, 200 + rnd(r) % 3000);
        if (sem_clockwait(s, CLOCK_MONOTONIC, &abs) == 0) return;
        if (errno == ETIMEDOUT) check_deadline_passed(CLOCK_MONOTONIC, &abs, "sem_clockwait");
        else CHECK(errno == EINTR);
      }
    default:
      while (sem_trywait(s) != 0) {
        CHECK(errno == EAGAIN || errno == EINTR);
        sched_yield();
      }
      return;
  }
}

static long futex_call(atomic_uint* w, int op, uint32_t val, const struct timespec* ts, uint32_t bitset) {
  return syscall(SYS_futex, w, op, val, ts, NULL, bitset);
}

static void futex_post(atomic_uint* w, int priv) {
  atomic_store(w, 1);
  futex_call(w, FUTEX_WAKE | priv, 1, NULL, 0);
}

static void futex_take(atomic_uint* w, int priv, Rng* r) {
  for (;;) {
    unsigned one = 1;
    if (atomic_compare_exchange_strong(w, &one, 0)) return;
    uint32_t kind = rnd(r) % 3;
    if (kind == 0) {
      long rc = futex_call(w, FUTEX_WAIT | priv, 0, NULL, 0);
      CHECK(rc == 0 || errno == EAGAIN || errno == EINTR);
    } else if (kind == 1) {
      int64_t len = (200 + rnd(r) % 2000) * 1000;
      struct timespec rel = ns_ts(len);
      int64_t t0 = now_ns(CLOCK_MONOTONIC);
      long rc = futex_call(w, FUTEX_WAIT | priv, 0, &rel, 0);
      if (rc != 0 && errno == ETIMEDOUT) check_elapsed(t0, len, "futex relative timeout");
      else CHECK(rc == 0 || errno == EAGAIN || errno == EINTR);
    } else {
      struct timespec abs = abs_in(CLOCK_MONOTONIC, 200 + rnd(r) % 2000);
      long rc = futex_call(w, FUTEX_WAIT_BITSET | priv, 0, &abs, FUTEX_BITSET_MATCH_ANY);
      if (rc != 0 && errno == ETIMEDOUT) check_deadline_passed(CLOCK_MONOTONIC, &abs, "futex absolute timeout");
      else CHECK(rc == 0 || errno == EAGAIN || errno == EINTR);
    }
  }
}

/* clock: the one cv was initialised with (pthread_cond_timedwait's). */
static void cond_wait_any(pthread_cond_t* cv, clockid_t clock, pthread_mutex_t* mu, Rng* r) {
  uint32_t k = rnd(r) % 3;
  if (k == 0) {
    CHECK(pthread_cond_wait(cv, mu) == 0);
  } else if (k == 1) {
    struct timespec abs = abs_in(clock, 200 + rnd(r) % 3000);
    int rc = pthread_cond_timedwait(cv, mu, &abs);
    if (rc == ETIMEDOUT) check_deadline_passed(clock, &abs, "pthread_cond_timedwait");
    else CHECK(rc == 0);
  } else {
    struct timespec abs = abs_in(CLOCK_MONOTONIC, 200 + rnd(r) % 3000);
    int rc = pthread_cond_clockwait(cv, mu, CLOCK_MONOTONIC, &abs);
    if (rc == ETIMEDOUT) check_deadline_passed(CLOCK_MONOTONIC, &abs, "pthread_cond_clockwait");
    else CHECK(rc == 0);
  }
}

static void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      CHECK(errno == EINTR);
      continue;
    }
    p += w;
    n -= (size_t)w;
  }
}

static char read_one(int fd) {
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n == 1) return c;
    CHECK(n < 0 && errno == EINTR);
  }
}

/* Waits until fd is readable with poll or ppoll, with or without timeouts. */
static void wait_readable(int fd, Rng* r) {
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    uint32_t k = rnd(r) % 3;
    int rc;
    if (k == 0) {
      rc = poll(&p, 1, -1);
    } else if (k == 1) {
      int ms = 1 + (int)(rnd(r) % 5);
      int64_t t0 = now_ns(CLOCK_MONOTONIC);
      rc = poll(&p, 1, ms);
      if (rc == 0) check_elapsed(t0, (int64_t)ms * 1000000, "poll timeout");
    } else {
      int64_t len = (100 + rnd(r) % 3000) * 1000;
      struct timespec rel = ns_ts(len);
      int64_t t0 = now_ns(CLOCK_MONOTONIC);
      rc = ppoll(&p, 1, &rel, NULL);
      if (rc == 0) check_elapsed(t0, len, "ppoll timeout");
    }
    if (rc > 0 && (p.revents & POLLIN)) return;
    CHECK(rc >= 0 || errno == EINTR);
  }
}

/* ---- the group operations ------------------------------------------------ */

static void op_cond_ring(Group* g, int m, Rng* r) {
  for (int lap = 0; lap < 2; lap++) {
    lock_ok(&g->mu);
    while (g->owner != m) cond_wait_any(&g->cv[m], CLOCK_REALTIME, &g->mu, r);
    g->ring_passes++;
    g->owner = (m + 1) % kGroup;
    CHECK(pthread_cond_signal(&g->cv[g->owner]) == 0);
    unlock_ok(&g->mu);
    if (rnd(r) % 4 == 0) sched_yield();
  }
}

static void op_cond_bcast(Group* g, int m, Rng* r) {
  lock_ok(&g->mu);
  if (m == 0) {
    while (g->arrived < kGroup - 1) cond_wait_any(&g->arrive_cv, g->cv_clock, &g->mu, r);
    g->arrived = 0;
    g->gen++;
    g->bcasts++;
    CHECK(pthread_cond_broadcast(&g->bcast_cv) == 0);
  } else {
    int mine = g->gen;
    if (++g->arrived == kGroup - 1) CHECK(pthread_cond_signal(&g->arrive_cv) == 0);
    while (g->gen == mine) cond_wait_any(&g->bcast_cv, g->cv_clock, &g->mu, r);
    g->bcast_woken++;
  }
  unlock_ok(&g->mu);
}

static void op_sem_ring(Group* g, int m, Rng* r) {
  if (m == 0) CHECK(sem_post(&g->sem[0]) == 0);
  for (int lap = 0; lap < 2; lap++) {
    sem_wait_any(&g->sem[m], r);
    lock_ok(&g->mu);
    g->sem_passes++;
    unlock_ok(&g->mu);
    CHECK(sem_post(&g->sem[(m + 1) % kGroup]) == 0);
  }
  if (m == 0) sem_wait_any(&g->sem[0], r); /* the last post of the second lap */
}

static void op_futex_ring(Group* g, int gi, int m, Rng* r) {
  int priv = gi % 50 == 7 ? 0 : FUTEX_PRIVATE_FLAG; /* a few shared ones go to the kernel */
  if (m == 0) futex_post(&g->fx[0], priv);
  for (int lap = 0; lap < 2; lap++) {
    futex_take(&g->fx[m], priv, r);
    lock_ok(&g->mu);
    g->futex_passes++;
    unlock_ok(&g->mu);
    futex_post(&g->fx[(m + 1) % kGroup], priv);
  }
  if (m == 0) futex_take(&g->fx[0], priv, r);
}

static void op_pipe(Group* g, int m, Rng* r) {
  if (m == 0) {
    write_all(g->pa[1], "abc", 3);
    for (int got = 0; got < kGroup - 1; got++) {
      if (rnd(r) % 2) wait_readable(g->pb[0], r);
      char c = read_one(g->pb[0]);
      CHECK(c >= 'a' && c <= 'c');
    }
    lock_ok(&g->mu);
    g->pipe_bytes += 2 * (kGroup - 1);
    unlock_ok(&g->mu);
  } else {
    wait_readable(g->pa[0], r);
    /* Another member may take the byte poll saw: read then blocks until
     * the next one (there are exactly as many bytes as readers). */
    char c = read_one(g->pa[0]);
    write_all(g->pb[1], &c, 1);
  }
}

static void rw_read_check(Group* g) {
  if (g->ra != g->rb) atomic_fetch_add(&g->rw_torn, 1);
  CHECK(pthread_rwlock_unlock(&g->rw) == 0);
}

static void rw_write(Group* g) {
  g->ra++;
  if (g->ra % 3 == 0) sched_yield(); /* readers must not see ra != rb meanwhile */
  g->rb++;
  atomic_fetch_add(&g->rw_writes, 1);
  CHECK(pthread_rwlock_unlock(&g->rw) == 0);
}

static void op_rwlock(Group* g, Rng* r) {
  for (int i = 0; i < 8; i++) {
    int rc;
    struct timespec abs;
    switch (rnd(r) % 8) {
      case 0:
        CHECK(pthread_rwlock_rdlock(&g->rw) == 0);
        rw_read_check(g);
        break;
      case 1:
        if (pthread_rwlock_tryrdlock(&g->rw) == 0) rw_read_check(g);
        break;
      case 2:
        abs = abs_in(CLOCK_REALTIME, 100 + rnd(r) % 2000);
        rc = pthread_rwlock_timedrdlock(&g->rw, &abs);
        if (rc == 0) rw_read_check(g);
        else if (rc == ETIMEDOUT) check_deadline_passed(CLOCK_REALTIME, &abs, "pthread_rwlock_timedrdlock");
        else CHECK(0);
        break;
      case 3:
        abs = abs_in(CLOCK_MONOTONIC, 100 + rnd(r) % 2000);
        rc = pthread_rwlock_clockrdlock(&g->rw, CLOCK_MONOTONIC, &abs);
        if (rc == 0) rw_read_check(g);
        else if (rc == ETIMEDOUT) check_deadline_passed(CLOCK_MONOTONIC, &abs, "pthread_rwlock_clockrdlock");
        else CHECK(0);
        break;
      case 4:
        CHECK(pthread_rwlock_wrlock(&g->rw) == 0);
        rw_write(g);
        break;
      case 5:
        if (pthread_rwlock_trywrlock(&g->rw) == 0) rw_write(g);
        break;
      case 6:
        abs = abs_in(CLOCK_REALTIME, 100 + rnd(r) % 2000);
        rc = pthread_rwlock_timedwrlock(&g->rw, &abs);
        if (rc == 0) rw_write(g);
        else if (rc == ETIMEDOUT) check_deadline_passed(CLOCK_REALTIME, &abs, "pthread_rwlock_timedwrlock");
        else CHECK(0);
        break;
      default:
        abs = abs_in(CLOCK_MONOTONIC, 100 + rnd(r) % 2000);
        rc = pthread_rwlock_clockwrlock(&g->rw, CLOCK_MONOTONIC, &abs);
        if (rc == 0) rw_write(g);
        else if (rc == ETIMEDOUT) check_deadline_passed(CLOCK_MONOTONIC, &abs, "pthread_rwlock_clockwrlock");
        else CHECK(0);
        break;
    }
  }
}

typedef struct {
  Group* g;
  long value;
  int nap;
} ChildArg;

static void* child(void* arg) {
  ChildArg* a = arg;
  lock_ok(&a->g->mu);
  a->g->children++;
  unlock_ok(&a->g->mu);
  if (a->nap == 1) sched_yield();
  else if (a->nap == 2) usleep(100);
  return (void*)(intptr_t)(a->value ^ 0x5a5a);
}

static void op_join(Group* g, int id, Rng* r) {
  ChildArg a = {g, id * 7L + 3, (int)(rnd(r) % 3)};
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, rnd(r) % 8 == 0 ? 256 * 1024 : kStack);
  pthread_t t;
  int rc = pthread_create(&t, &at, child, &a);
  pthread_attr_destroy(&at);
  if (rc != 0) {
    printf("FAIL pthread_create child: %d\n", rc);
    atomic_fetch_add(&g_failures, 1);
    return;
  }
  void* ret = NULL;
  switch (rnd(r) % 4) {
    case 0:
      CHECK(pthread_join(t, &ret) == 0);
      break;
    case 1:
      for (;;) {
        struct timespec abs = abs_in(CLOCK_REALTIME, 100 + rnd(r) % 2000);
        rc = pthread_timedjoin_np(t, &ret, &abs);
        if (rc == 0) break;
        CHECK(rc == ETIMEDOUT);
        check_deadline_passed(CLOCK_REALTIME, &abs, "pthread_timedjoin_np");
      }
      break;
    case 2:
      for (;;) {
        struct timespec abs = abs_in(CLOCK_MONOTONIC, 100 + rnd(r) % 2000);
        rc = pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &abs);
        if (rc == 0) break;
        CHECK(rc == ETIMEDOUT);
        check_deadline_passed(CLOCK_MONOTONIC, &abs, "pthread_clockjoin_np");
      }
      break;
    default:
      while ((rc = pthread_tryjoin_np(t, &ret)) != 0) {
        CHECK(rc == EBUSY);
        sched_yield();
      }
      break;
  }
  if ((intptr_t)ret == (a.value ^ 0x5a5a)) atomic_fetch_add(&g_children_ok, 1);
  else CHECK(!"child returned the wrong value");
}

static void once_init(void) {
  atomic_fetch_add(&g_once_runs, 1);
  g_groups[tl_once_group].once_hits[tl_once_round]++;
  usleep(200); /* the others wait in pthread_once meanwhile */
}

static void op_once(Group* g, int gi, int round) {
  tl_once_group = gi;
  tl_once_round = round;
  CHECK(pthread_once(&g->once[round], once_init) == 0);
  CHECK(g->once_hits[round] == 1);
}

/* One sleep of each kind, each checked against its clock. */
static void op_sleep(Rng* r) {
  for (int k = 0; k < 5; k++) {
    int64_t len = (100 + rnd(r) % 1400) * 1000;
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    struct timespec req = ns_ts(len), rem;
    const char* what = "";
    switch (k) {
      case 0:
        what = "nanosleep";
        while (nanosleep(&req, &rem) != 0) {
          CHECK(errno == EINTR);
          req = rem;
        }
        check_elapsed(t0, len, what);
        break;
      case 1: {
        /* usleep gives no time left on EINTR: sleep again for what is. */
        what = "usleep";
        int64_t left;
        while ((left = t0 + len - now_ns(CLOCK_MONOTONIC)) > 0 && usleep((useconds_t)((left + 999) / 1000)) != 0)
          CHECK(errno == EINTR);
        check_elapsed(t0, len, what);
        break;
      }
      case 2: {
        what = "clock_nanosleep relative";
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem)) != 0) {
          CHECK(rc == EINTR);
          req = rem;
        }
        check_elapsed(t0, len, what);
        break;
      }
      default: {
        clockid_t c = k == 3 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
        what = k == 3 ? "clock_nanosleep TIMER_ABSTIME MONOTONIC" : "clock_nanosleep TIMER_ABSTIME REALTIME";
        struct timespec abs = abs_in(c, len / 1000);
        int rc;
        while ((rc = clock_nanosleep(c, TIMER_ABSTIME, &abs, NULL)) != 0) CHECK(rc == EINTR);
        check_deadline_passed(c, &abs, what);
        break;
      }
    }
    atomic_fetch_add(&g_sleeps, 1);
  }
}

/* sched: the stream the printed counts depend on (two numbers a step). */
static void op_mutex(Rng* sched, Rng* r) {
  for (int i = 0; i < 16; i++) {
    uint32_t k = rnd(sched) % 10;
    uint32_t which = rnd(sched);
    int rc;
    struct timespec abs;
    switch (k) {
      case 0:
      case 1: {
        pthread_mutex_t* m = &g_nmu[which % kGlobalMutexes];
        lock_ok(m);
        g_ncount[which % kGlobalMutexes]++;
        unlock_ok(m);
        atomic_fetch_add(&g_n_locked, 1);
        break;
      }
      case 2: {
        int j = which % kRecMutexes;
        lock_ok(&g_rmu[j]);
        lock_ok(&g_rmu[j]);
        CHECK(pthread_mutex_trylock(&g_rmu[j]) == 0);
        g_rcount[j]++;
        unlock_ok(&g_rmu[j]);
        unlock_ok(&g_rmu[j]);
        unlock_ok(&g_rmu[j]);
        atomic_fetch_add(&g_r_locked, 1);
        break;
      }
      case 3: {
        int j = which % kErrMutexes;
        lock_ok(&g_emu[j]);
        CHECK(pthread_mutex_lock(&g_emu[j]) == EDEADLK);
        g_ecount[j]++;
        unlock_ok(&g_emu[j]);
        CHECK(pthread_mutex_unlock(&g_emu[j]) == EPERM);
        atomic_fetch_add(&g_e_locked, 1);
        break;
      }
      case 4: {
        int j = which % kGlobalMutexes;
        abs = abs_in(CLOCK_REALTIME, 100 + rnd(r) % 2000);
        rc = pthread_mutex_timedlock(&g_nmu[j], &abs);
        if (rc == 0) {
          g_ncount[j]++;
          unlock_ok(&g_nmu[j]);
          atomic_fetch_add(&g_n_extra, 1);
        } else {
          CHECK(rc == ETIMEDOUT);
          check_deadline_passed(CLOCK_REALTIME, &abs, "pthread_mutex_timedlock");
        }
        break;
      }
      case 5: {
        int j = which % kGlobalMutexes;
        abs = abs_in(CLOCK_MONOTONIC, 100 + rnd(r) % 2000);
        rc = pthread_mutex_clocklock(&g_nmu[j], CLOCK_MONOTONIC, &abs);
        if (rc == 0) {
          g_ncount[j]++;
          unlock_ok(&g_nmu[j]);
          atomic_fetch_add(&g_n_extra, 1);
        } else {
          CHECK(rc == ETIMEDOUT);
          check_deadline_passed(CLOCK_MONOTONIC, &abs, "pthread_mutex_clocklock");
        }
        break;
      }
      case 6: {
        int j = which % kGlobalMutexes;
        rc = pthread_mutex_trylock(&g_nmu[j]);
        if (rc == 0) {
          g_ncount[j]++;
          unlock_ok(&g_nmu[j]);
          atomic_fetch_add(&g_n_extra, 1);
        } else {
          CHECK(rc == EBUSY);
        }
        break;
      }
      case 7:
        lock_ok(&g_hog_mu);
        g_hog_count++;
        unlock_ok(&g_hog_mu);
        atomic_fetch_add(&g_hog_locked, 1);
        break;
      case 8:
        lock_ok(&g_h_mu); /* the handlers' mutex: their trylock fails meanwhile */
        g_h_protected++;
        unlock_ok(&g_h_mu);
        atomic_fetch_add(&g_w_hmu, 1);
        break;
      default:
        sched_yield();
        break;
    }
  }
}

static void op_pool(Rng* r) {
  for (int i = 0; i < 6; i++) {
    sem_wait_any(&g_pool, r);
    int in = atomic_fetch_add(&g_pool_in, 1) + 1;
    if (in > kPool) atomic_fetch_add(&g_pool_over, 1);
    if (rnd(r) % 3 == 0) sched_yield();
    else if (rnd(r) % 3 == 0) usleep(30);
    atomic_fetch_sub(&g_pool_in, 1);
    atomic_fetch_add(&g_pool_acquired, 1);
    CHECK(sem_post(&g_pool) == 0);
  }
}

static enum Op op_of(int gi, int round) { return (enum Op)((gi + round) % kOps); }

static void* worker(void* arg) {
  int id = (int)(intptr_t)arg;
  int gi = id / kGroup, m = id % kGroup;
  Group* g = &g_groups[gi];
  /* r is drawn from a varying number of times (retries after timeouts),
   * sched a fixed number: what the printed totals depend on. */
  Rng r = {0x2545f4914f6cdd1dULL * (uint64_t)(id + 1) + 1};
  Rng sched = {0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1) + 7};
  for (int round = 0; round < g_rounds; round++) {
    int rc = pthread_barrier_wait(&g->bar);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    switch (op_of(gi, round)) {
      case kOpCondRing:
        op_cond_ring(g, m, &r);
        break;
      case kOpCondBcast:
        op_cond_bcast(g, m, &r);
        break;
      case kOpSemRing:
        op_sem_ring(g, m, &r);
        break;
      case kOpFutexRing:
        op_futex_ring(g, gi, m, &r);
        break;
      case kOpPipe:
        op_pipe(g, m, &r);
        break;
      case kOpRwlock:
        op_rwlock(g, &r);
        break;
      case kOpJoin:
        op_join(g, id, &r);
        break;
      case kOpOnce:
        op_once(g, gi, round);
        break;
      case kOpSleep:
        op_sleep(&r);
        break;
      case kOpMutex:
        op_mutex(&sched, &r);
        break;
      default:
        op_pool(&r);
        break;
    }
  }
  lock_ok(&g_gate_mu);
  if (--g_running == 0) CHECK(pthread_cond_signal(&g_done_cv) == 0);
  while (!g_released) CHECK(pthread_cond_wait(&g_gate_cv, &g_gate_mu) == 0);
  unlock_ok(&g_gate_mu);
  return NULL;
}

/* ---- set-up and checks ------------------------------------------------ */

static void init_state(void) {
  for (int gi = 0; gi < g_ngroups; gi++) {
    Group* g = &g_groups[gi];
    memset(g, 0, sizeof *g);
    CHECK(pthread_barrier_init(&g->bar, NULL, kGroup) == 0);
    pthread_mutex_init(&g->mu, NULL);
    for (int m = 0; m < kGroup; m++) {
      pthread_cond_init(&g->cv[m], NULL);
      sem_init(&g->sem[m], 0, 0);
    }
    /* Half the condvars wait on CLOCK_MONOTONIC (timedwait then uses it). */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    g->cv_clock = gi % 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    pthread_condattr_setclock(&ca, g->cv_clock);
    pthread_cond_init(&g->arrive_cv, &ca);
    pthread_cond_init(&g->bcast_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    if (gi % 2) pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    if (pipe(g->pa) != 0 || pipe(g->pb) != 0) {
      printf("FAIL pipe: %s\n", strerror(errno));
      exit(1);
    }
    for (int k = 0; k < kMaxRounds; k++) g->once[k] = PTHREAD_ONCE_INIT;
  }
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  for (int k = 0; k < kGlobalMutexes; k++) {
    pthread_mutex_init(&g_nmu[k], NULL);
    g_ncount[k] = 0;
  }
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  for (int k = 0; k < kRecMutexes; k++) {
    pthread_mutex_init(&g_rmu[k], &a);
    g_rcount[k] = 0;
  }
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  for (int k = 0; k < kErrMutexes; k++) {
    pthread_mutex_init(&g_emu[k], &a);
    g_ecount[k] = 0;
  }
  pthread_mutexattr_destroy(&a);
  sem_init(&g_pool, 0, kPool);
  sem_init(&g_h_sem, 0, 0);
  g_hog_count = 0;
  g_h_protected = 0;
  atomic_store(&g_n_locked, 0);
  atomic_store(&g_n_extra, 0);
  atomic_store(&g_r_locked, 0);
  atomic_store(&g_e_locked, 0);
  atomic_store(&g_hog_locked, 0);
  atomic_store(&g_hog_stretches, 0);
  atomic_store(&g_pool_acquired, 0);
  atomic_store(&g_pool_over, 0);
  atomic_store(&g_once_runs, 0);
  atomic_store(&g_children_ok, 0);
  atomic_store(&g_sleeps, 0);
  atomic_store(&g_h_locked, 0);
  atomic_store(&g_w_hmu, 0);
  atomic_store(&g_h_runs, 0);
  atomic_store(&g_h_write_dropped, 0);
  atomic_store(&g_consumed, 0);
  atomic_store(&g_drained, 0);
  atomic_store(&g_stop_signals, 0);
  atomic_store(&g_stop_aux, 0);
}

static void destroy_state(void) {
  for (int gi = 0; gi < g_ngroups; gi++) {
    Group* g = &g_groups[gi];
    CHECK(pthread_barrier_destroy(&g->bar) == 0);
    close(g->pa[0]);
    close(g->pa[1]);
    close(g->pb[0]);
    close(g->pb[1]);
    CHECK(pthread_rwlock_destroy(&g->rw) == 0);
    for (int m = 0; m < kGroup; m++) CHECK(sem_destroy(&g->sem[m]) == 0);
  }
}

/* Checks one iteration's invariants; prints its deterministic totals. */
static void check_iteration(int it) {
  long want[kOps] = {0};
  for (int gi = 0; gi < g_ngroups; gi++)
    for (int round = 0; round < g_rounds; round++) want[op_of(gi, round)]++;
  long ring = 0, bcasts = 0, woken = 0, semp = 0, futp = 0, bytes = 0, children = 0, torn = 0, rw_bad = 0, once_bad = 0;
  for (int gi = 0; gi < g_ngroups; gi++) {
    Group* g = &g_groups[gi];
    ring += g->ring_passes;
    bcasts += g->bcasts;
    woken += g->bcast_woken;
    semp += g->sem_passes;
    futp += g->futex_passes;
    bytes += g->pipe_bytes;
    children += g->children;
    torn += atomic_load(&g->rw_torn);
    if (g->ra != g->rb || g->ra != atomic_load(&g->rw_writes)) rw_bad++;
    int v;
    for (int m = 0; m < kGroup; m++) {
      sem_getvalue(&g->sem[m], &v);
      if (v != 0 || atomic_load(&g->fx[m]) != 0) rw_bad++;
    }
    for (int round = 0; round < g_rounds; round++)
      if (op_of(gi, round) == kOpOnce && g->once_hits[round] != 1) once_bad++;
  }
  printf("iteration %d\n", it);
  printf("  cond_ring passes=%ld\n", ring);
  CHECK(ring == want[kOpCondRing] * 2 * kGroup);
  printf("  cond_broadcast broadcasts=%ld woken=%ld\n", bcasts, woken);
  CHECK(bcasts == want[kOpCondBcast] && woken == want[kOpCondBcast] * (kGroup - 1));
  printf("  sem_ring passes=%ld\n", semp);
  CHECK(semp == want[kOpSemRing] * 2 * kGroup);
  printf("  futex_ring passes=%ld\n", futp);
  CHECK(futp == want[kOpFutexRing] * 2 * kGroup);
  printf("  pipe bytes=%ld\n", bytes);
  CHECK(bytes == want[kOpPipe] * 2 * (kGroup - 1));
  printf("  rwlock torn=%ld bad=%ld\n", torn, rw_bad);
  CHECK(torn == 0 && rw_bad == 0);
  printf("  join children=%ld returned=%ld\n", children, atomic_load(&g_children_ok));
  CHECK(children == want[kOpJoin] * kGroup && atomic_load(&g_children_ok) == children);
  printf("  once runs=%ld bad=%ld\n", atomic_load(&g_once_runs), once_bad);
  CHECK(atomic_load(&g_once_runs) == want[kOpOnce] && once_bad == 0);
  printf("  sleeps=%ld\n", atomic_load(&g_sleeps));
  CHECK(atomic_load(&g_sleeps) == want[kOpSleep] * kGroup * 5);
  long n = 0, rr = 0, e = 0;
  for (int k = 0; k < kGlobalMutexes; k++) n += g_ncount[k];
  for (int k = 0; k < kRecMutexes; k++) rr += g_rcount[k];
  for (int k = 0; k < kErrMutexes; k++) e += g_ecount[k];
  printf("  mutex normal=%ld recursive=%ld errorcheck=%ld hog=%ld\n", atomic_load(&g_n_locked), rr, e,
         atomic_load(&g_hog_locked));
  CHECK(n == atomic_load(&g_n_locked) + atomic_load(&g_n_extra));
  CHECK(rr == atomic_load(&g_r_locked) && e == atomic_load(&g_e_locked));
  CHECK(g_hog_count == atomic_load(&g_hog_locked) + kHogs / 2 * kHogStretches);
  printf("  hog stretches=%ld\n", atomic_load(&g_hog_stretches));
  CHECK(atomic_load(&g_hog_stretches) == kHogs * kHogStretches);
  printf("  pool acquisitions=%ld over=%ld\n", atomic_load(&g_pool_acquired), atomic_load(&g_pool_over));
  CHECK(atomic_load(&g_pool_acquired) == want[kOpPool] * kGroup * 6 && atomic_load(&g_pool_over) == 0);
  int pv;
  sem_getvalue(&g_pool, &pv);
  CHECK(pv == kPool);
  /* Only this thread is left and it blocks both signals: no handler runs
   * any more. What the handlers posted and wrote must all be there. */
  long runs = atomic_load(&g_h_runs);
  long sem_left = 0, pipe_left = 0;
  while (sem_trywait(&g_h_sem) == 0) sem_left++;
  char buf[256];
  ssize_t got;
  while ((got = read(g_h_pipe[0], buf, sizeof buf)) > 0) pipe_left += got;
  long posted = atomic_load(&g_consumed) + sem_left;
  long written = atomic_load(&g_drained) + pipe_left + atomic_load(&g_h_write_dropped);
  fprintf(stderr, "wait_stress: iteration %d: signals sent=%ld handled=%ld, timed checks=%ld\n", it,
          atomic_load(&g_sent), runs, atomic_load(&g_timed_checked));
  int sig_ok = posted == runs && written == runs && g_h_protected == atomic_load(&g_h_locked) + atomic_load(&g_w_hmu);
  if (!sig_ok)
    printf("FAIL signals: handled=%ld posted=%ld written=%ld protected=%ld locked=%ld+%ld\n", runs, posted, written,
           g_h_protected, atomic_load(&g_h_locked), atomic_load(&g_w_hmu));
  CHECK(sig_ok);
  printf("  signals %s\n", sig_ok ? "ok" : "FAILED");
  printf("  early=%ld\n", atomic_load(&g_early));
  CHECK(atomic_load(&g_early) == 0);
}

static void run_iteration(int it) {
  init_state();
  CHECK(pipe2(g_h_pipe, O_NONBLOCK) == 0);
  sigset_t both;
  sigemptyset(&both);
  sigaddset(&both, SIGUSR1);
  sigaddset(&both, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &both, NULL);

  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, kStack);
  pthread_t cons, drain, sigt, hogs[kHogs];
  CHECK(pthread_create(&cons, &at, consumer, NULL) == 0);
  CHECK(pthread_create(&drain, &at, drainer, NULL) == 0);
  g_running = g_threads;
  g_released = 0;
  for (int i = 0; i < g_threads; i++) {
    int rc = pthread_create(&g_tids[i], &at, worker, (void*)(intptr_t)i);
    if (rc != 0) {
      printf("FAIL pthread_create worker %d: %d\n", i, rc);
      exit(1);
    }
  }
  CHECK(pthread_create(&sigt, &at, signaller, NULL) == 0);
  for (int i = 0; i < kHogs; i++) CHECK(pthread_create(&hogs[i], &at, hog, (void*)(intptr_t)i) == 0);
  pthread_attr_destroy(&at);

  lock_ok(&g_gate_mu);
  while (g_running > 0) CHECK(pthread_cond_wait(&g_done_cv, &g_gate_mu) == 0);
  unlock_ok(&g_gate_mu);
  for (int i = 0; i < kHogs; i++) CHECK(pthread_join(hogs[i], NULL) == 0);
  atomic_store(&g_stop_signals, 1);
  CHECK(pthread_join(sigt, NULL) == 0);
  lock_ok(&g_gate_mu);
  g_released = 1;
  CHECK(pthread_cond_broadcast(&g_gate_cv) == 0);
  unlock_ok(&g_gate_mu);
  for (int i = 0; i < g_threads; i++) CHECK(pthread_join(g_tids[i], NULL) == 0);
  /* From here on main takes no handler (what is pending for it waits for
   * the next iteration, whose counters it then counts in); one may still
   * run on the consumer or the drainer until they are joined. */
  pthread_sigmask(SIG_BLOCK, &both, NULL);
  atomic_store(&g_stop_aux, 1);
  CHECK(sem_post(&g_h_sem) == 0);
  CHECK(pthread_join(cons, NULL) == 0);
  char x = 'x';
  while (write(g_h_pipe[1], &x, 1) != 1) {
    struct timespec d = {0, 1000000};
    nanosleep(&d, NULL); /* full: the drainer is making room */
  }
  CHECK(pthread_join(drain, NULL) == 0);
  check_iteration(it);
  close(g_h_pipe[0]);
  close(g_h_pipe[1]);
  destroy_state();
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1) g_threads = atoi(argv[1]);
  if (argc > 2) g_rounds = atoi(argv[2]);
  if (argc > 3) g_iterations = atoi(argv[3]);
  if (argc > 4) g_watchdog = atoi(argv[4]);
  if (g_threads < kGroup || g_threads % kGroup || g_rounds < 1 || g_rounds > kMaxRounds || g_iterations < 1) {
    fprintf(stderr, "usage: wait_stress [THREADS (multiple of 4) [ROUNDS (1-64) [ITERATIONS [WATCHDOG_S]]]]\n");
    return 2;
  }
  g_ngroups = g_threads / kGroup;
  /* 4 fds a group plus a few. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t need = (rlim_t)g_ngroups * 4 + 64;
  if (rl.rlim_cur < need) {
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need) {
      printf("FAIL RLIMIT_NOFILE %lu is below the %lu fds needed\n", (unsigned long)rl.rlim_cur, (unsigned long)need);
      return 1;
    }
  }
  g_groups = calloc((size_t)g_ngroups, sizeof *g_groups);
  g_tids = calloc((size_t)g_threads, sizeof *g_tids);
  if (!g_groups || !g_tids) return 1;

  struct sigaction sa = {0};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_flags = 0;
  sigaction(SIGUSR2, &sa, NULL);

  printf("threads=%d rounds=%d iterations=%d\n", g_threads, g_rounds, g_iterations);
  for (int it = 1; it <= g_iterations; it++) {
    alarm((unsigned)g_watchdog); /* default action: a hang dies of SIGALRM */
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    run_iteration(it);
    fprintf(stderr, "wait_stress: iteration %d took %.2f s\n", it, (now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
  }
  alarm(0);
  int f = atomic_load(&g_failures);
  printf("wait_stress: %s\n", f == 0 ? "ok" : "FAILED");
  return f == 0 ? 0 : 1;
}
