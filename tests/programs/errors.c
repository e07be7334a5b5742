/* errors — error codes and attribute queries, natively and under the shim.
 *
 * Only behaviour glibc defines (no undefined behaviour):
 *   join of self -> EDEADLK (main and another thread);
 *   join of a detached thread that is still running -> EINVAL;
 *   pthread_detach twice on a running thread -> 0 then EINVAL;
 *   pthread_tryjoin_np on a running thread -> EBUSY (itself and a detached
 *   one too: glibc looks at the thread id first), once finished -> 0;
 *   attr: stack size below PTHREAD_STACK_MIN -> EINVAL, invalid detach
 *   state -> EINVAL; a thread with a 1 TiB stack and one with 256 MiB
 *   (whatever the kernel says natively: EAGAIN for 1 TiB unless it has the
 *   memory or overcommits without limit);
 *   pthread_attr_setstack with a malloc'd 256 KiB buffer: the thread runs
 *   on it (a local's address is inside) and getattr_np reports it exactly;
 *   pthread_getattr_np on another running thread and on self: the stack
 *   range contains a local of that thread and is >= the requested size,
 *   the detach state is reported;
 *   pthread_setname_np / getname_np on self and another thread, ERANGE for a
 *   16-char name and for a too-small buffer;
 *   pthread_self() in a thread equals what pthread_create returned;
 *   pthread_getconcurrency / setconcurrency (4 -> 4, -1 -> EINVAL);
 *   sched_yield and pthread_yield return 0;
 *   handles of finished threads while glibc still caches their memory (no
 *   thread is created in between, so none reuses it): a joined thread ->
 *   join ESRCH, detach ESRCH, tryjoin EBUSY; a detached thread that
 *   finished, or one detached after it finished -> EINVAL for all three
 *   (issue 8, item 7: the shim said EINVAL for the joined one);
 *   rwlock held for writing by the caller: tryrdlock and trywrlock EBUSY
 *   (glibc never checks the owner there), rdlock and wrlock EDEADLK;
 *   FUTEX_REQUEUE/CMP_REQUEUE from a word onto itself: the kernel leaves the
 *   waiters in place and counts them as requeued (woken + requeued; the
 *   shim moved each one to the tail of its own list and met it again,
 *   returning n_requeue, INT_MAX here).
 * Each line prints the value observed; the exit status is 1 when any value
 * differs from what glibc documents.  Threads park on pipes or spin flags
 * (no mutexes or condvars: those come with a later issue). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_bad;

static void check(const char* what, long got, long want) {
  printf("%s: %ld\n", what, got);
  if (got != want) {
    fprintf(stderr, "errors: %s: got %ld, want %ld\n", what, got, want);
    g_bad++;
  }
}

static void check_errno_name(const char* what, int got, int want) {
  printf("%s: %s\n", what, got == 0 ? "0" : strerrorname_np(got) ? strerrorname_np(got) : "?");
  if (got != want) {
    fprintf(stderr, "errors: %s: got %d, want %d\n", what, got, want);
    g_bad++;
  }
}

static void check_yes(const char* what, int cond) {
  printf("%s: %s\n", what, cond ? "yes" : "no");
  if (!cond) g_bad++;
}

static int in_range(const void* p, const void* lo, size_t size) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)lo;
  return a >= b && a < b + size;
}

/* ---- threads parked on a pipe ---- */
static int g_pipe[2];
static atomic_int g_pipe_done;
static void* pipe_parker(void* arg) {
  (void)arg;
  char c;
  if (read(g_pipe[0], &c, 1) == 1) atomic_fetch_add(&g_pipe_done, 1);
  return NULL;
}

/* ---- join self from a thread ---- */
static void* join_self(void* arg) {
  (void)arg;
  return (void*)(intptr_t)pthread_join(pthread_self(), NULL);
}

/* ---- spinning until released; publishes a local and its pthread_self ---- */
struct spinner {
  atomic_int release;
  atomic_int started;
  _Atomic(uintptr_t) local_addr;
  pthread_t self;
  int self_getattr_ok;
  char own_name[32];
};
static void* spin_main(void* arg) {
  struct spinner* s = arg;
  volatile int local = 1;
  s->self = pthread_self();
  /* getattr_np on self */
  pthread_attr_t a;
  void* addr;
  size_t size;
  s->self_getattr_ok = pthread_getattr_np(pthread_self(), &a) == 0 && pthread_attr_getstack(&a, &addr, &size) == 0 &&
                       in_range((const void*)&local, addr, size);
  pthread_attr_destroy(&a);
  atomic_store(&s->local_addr, (uintptr_t)&local);
  atomic_store(&s->started, 1);
  while (atomic_load(&s->release) == 0) sched_yield();
  /* main has named this thread by now */
  if (pthread_getname_np(pthread_self(), s->own_name, sizeof s->own_name) != 0) strcpy(s->own_name, "?");
  atomic_store(&s->started, 2);
  while (atomic_load(&s->release) == 1) sched_yield();
  return (void*)(intptr_t)(local + 76);
}

/* ---- user stack ---- */
struct user_stack {
  void* buf;
  size_t size;
  int local_inside;
  int getattr_exact;
};
static void* user_stack_main(void* arg) {
  struct user_stack* u = arg;
  volatile int local = 0;
  u->local_inside = in_range((const void*)&local, u->buf, u->size);
  pthread_attr_t a;
  void* addr = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &a) == 0) {
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
  }
  u->getattr_exact = addr == u->buf && size == u->size;
  return (void*)(intptr_t)(local + 5);
}

/* ---- finished threads and futex waiters ---- */
static atomic_int g_quick_done;
static void* quick(void* arg) {
  atomic_store(&g_quick_done, 1);
  return arg;
}

static _Atomic unsigned g_fw;
static atomic_int g_fw_started;
static void* futex_waiter(void* arg) {
  (void)arg;
  atomic_fetch_add(&g_fw_started, 1);
  while (atomic_load(&g_fw) == 0) syscall(SYS_futex, &g_fw, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void wait_started(struct spinner* s, int v) {
  while (atomic_load(&s->started) < v) sched_yield();
}

int main(void) {
  mnp_report_shim();
  if (pipe(g_pipe) != 0) return 1;
  pthread_attr_t attr;
  pthread_t t;
  void* res;

  /* join of self */
  check_errno_name("join self (main)", pthread_join(pthread_self(), NULL), EDEADLK);
  /* glibc's tryjoin looks at the thread id first: a running thread is EBUSY */
  check_errno_name("tryjoin self (main)", pthread_tryjoin_np(pthread_self(), NULL), EBUSY);
  if (pthread_create(&t, NULL, join_self, NULL) != 0 || pthread_join(t, &res) != 0) return 1;
  check_errno_name("join self (thread)", (int)(intptr_t)res, EDEADLK);

  /* join of a running detached thread; detach twice */
  pthread_t detached_by_attr, detached_twice;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&detached_by_attr, &attr, pipe_parker, NULL) != 0) return 1;
  pthread_attr_destroy(&attr);
  if (pthread_create(&detached_twice, NULL, pipe_parker, NULL) != 0) return 1;
  check_errno_name("join running detached thread", pthread_join(detached_by_attr, NULL), EINVAL);
  check_errno_name("tryjoin running detached thread", pthread_tryjoin_np(detached_by_attr, NULL), EBUSY);
  check_errno_name("detach first", pthread_detach(detached_twice), 0);
  check_errno_name("detach second", pthread_detach(detached_twice), EINVAL);
  check_errno_name("join after detach", pthread_join(detached_twice, NULL), EINVAL);
  {
    pthread_attr_t a;
    int st = -1;
    if (pthread_getattr_np(detached_by_attr, &a) == 0) {
      pthread_attr_getdetachstate(&a, &st);
      pthread_attr_destroy(&a);
    }
    check_yes("getattr_np reports detached", st == PTHREAD_CREATE_DETACHED);
  }
  if (write(g_pipe[1], "xx", 2) != 2) return 1;
  while (atomic_load(&g_pipe_done) < 2) sched_yield();

  /* attributes */
  pthread_attr_init(&attr);
  check_errno_name("setstacksize below minimum", pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN - 1), EINVAL);
  check_errno_name("setstacksize minimum", pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN), 0);
  check_errno_name("setdetachstate invalid", pthread_attr_setdetachstate(&attr, 12345), EINVAL);
  pthread_attr_destroy(&attr);

  /* Stacks as big as 1 TiB (refused natively unless the machine has the
   * memory or overcommits without limit) and 256 MiB (granted): printed
   * only, the runner compares them with the native run. */
  {
    static const size_t sizes[] = {(size_t)1 << 40, (size_t)256 << 20};
    for (int i = 0; i < 2; i++) {
      pthread_attr_t big;
      pthread_t bt;
      pthread_attr_init(&big);
      pthread_attr_setstacksize(&big, sizes[i]);
      int rc = pthread_create(&bt, &big, quick, (void*)(intptr_t)7);
      void* got = NULL;
      if (rc == 0) pthread_join(bt, &got);
      pthread_attr_destroy(&big);
      printf("create with a %zu MiB stack: %s, result %ld\n", sizes[i] >> 20, rc ? strerrorname_np(rc) : "0",
             (long)(intptr_t)got);
    }
  }

  /* caller-supplied stack */
  {
    struct user_stack u = {.size = 256 * 1024};
    u.buf = malloc(u.size);
    if (u.buf == NULL) return 1;
    pthread_attr_init(&attr);
    check_errno_name("setstack", pthread_attr_setstack(&attr, u.buf, u.size), 0);
    if (pthread_create(&t, &attr, user_stack_main, &u) != 0 || pthread_join(t, &res) != 0) return 1;
    pthread_attr_destroy(&attr);
    check("user stack thread result", (long)(intptr_t)res, 5);
    check_yes("user stack holds the thread's local", u.local_inside);
    check_yes("user stack reported exactly by getattr_np", u.getattr_exact);
    free(u.buf);
  }

  /* a running thread: tryjoin, getattr_np, names, pthread_self */
  {
    static struct spinner s;
    const size_t want_size = 1024 * 1024;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, want_size);
    if (pthread_create(&t, &attr, spin_main, &s) != 0) return 1;
    pthread_attr_destroy(&attr);
    wait_started(&s, 1);
    check_errno_name("tryjoin running", pthread_tryjoin_np(t, &res), EBUSY);
    check_yes("pthread_self in thread equals created id", pthread_equal(s.self, t) != 0);
    check_yes("pthread_equal(main, thread) is false", pthread_equal(pthread_self(), t) == 0);
    check_yes("getattr_np on self contains a local", s.self_getattr_ok);

    pthread_attr_t a;
    void* addr = NULL;
    size_t size = 0;
    int st = -1;
    check_errno_name("getattr_np other", pthread_getattr_np(t, &a), 0);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_getdetachstate(&a, &st);
    pthread_attr_destroy(&a);
    check_yes("getattr_np other contains its local", in_range((const void*)atomic_load(&s.local_addr), addr, size));
    check_yes("getattr_np other size >= requested", size >= want_size);
    check_yes("getattr_np other joinable", st == PTHREAD_CREATE_JOINABLE);

    char name[32];
    check_errno_name("setname self", pthread_setname_np(pthread_self(), "errors-main"), 0);
    check_errno_name("getname self", pthread_getname_np(pthread_self(), name, sizeof name), 0);
    printf("name self: %s\n", name);
    if (strcmp(name, "errors-main") != 0) g_bad++;
    check_errno_name("setname other", pthread_setname_np(t, "errors-other"), 0);
    check_errno_name("getname other", pthread_getname_np(t, name, sizeof name), 0);
    printf("name other: %s\n", name);
    if (strcmp(name, "errors-other") != 0) g_bad++;
    check_errno_name("setname 16 chars", pthread_setname_np(t, "0123456789abcdef"), ERANGE);
    check_errno_name("setname 15 chars", pthread_setname_np(t, "0123456789abcde"), 0);
    check_errno_name("getname small buffer", pthread_getname_np(t, name, 8), ERANGE);
    atomic_store(&s.release, 1);
    wait_started(&s, 2);
    printf("name seen by the thread itself: %s\n", s.own_name);
    if (strcmp(s.own_name, "0123456789abcde") != 0) g_bad++;

    atomic_store(&s.release, 2);
    int rc;
    long spins = 0;
    while ((rc = pthread_tryjoin_np(t, &res)) == EBUSY && spins++ < 10000000) sched_yield();
    check_errno_name("tryjoin finished", rc, 0);
    check("tryjoin value", (long)(intptr_t)res, 77);
  }

  /* handles of finished threads (glibc's memory for them stays cached) */
  {
    pthread_t j;
    if (pthread_create(&j, NULL, quick, NULL) != 0 || pthread_join(j, NULL) != 0) return 1;
    check_errno_name("join joined", pthread_join(j, NULL), ESRCH);
    check_errno_name("tryjoin joined", pthread_tryjoin_np(j, NULL), EBUSY);
    check_errno_name("detach joined", pthread_detach(j), ESRCH);

    pthread_t d;
    pthread_attr_t da;
    pthread_attr_init(&da);
    pthread_attr_setdetachstate(&da, PTHREAD_CREATE_DETACHED);
    atomic_store(&g_quick_done, 0);
    if (pthread_create(&d, &da, quick, NULL) != 0) return 1;
    pthread_attr_destroy(&da);
    while (!atomic_load(&g_quick_done)) sched_yield();
    sleep_ms(50); /* and gone from the kernel: EINVAL either way */
    check_errno_name("join detached finished", pthread_join(d, NULL), EINVAL);
    check_errno_name("tryjoin detached finished", pthread_tryjoin_np(d, NULL), EINVAL);
    check_errno_name("detach detached finished", pthread_detach(d), EINVAL);

    pthread_t k;
    atomic_store(&g_quick_done, 0);
    if (pthread_create(&k, NULL, quick, NULL) != 0) return 1;
    while (!atomic_load(&g_quick_done)) sched_yield();
    sleep_ms(50);
    check_errno_name("detach after it finished", pthread_detach(k), 0);
    check_errno_name("join detached after finish", pthread_join(k, NULL), EINVAL);
    check_errno_name("detach again after finish", pthread_detach(k), EINVAL);
  }

  /* rwlock held for writing by the caller */
  {
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    check_errno_name("rwlock wrlock", pthread_rwlock_wrlock(&rw), 0);
    check_errno_name("rwlock tryrdlock by writer", pthread_rwlock_tryrdlock(&rw), EBUSY);
    check_errno_name("rwlock trywrlock by writer", pthread_rwlock_trywrlock(&rw), EBUSY);
    check_errno_name("rwlock rdlock by writer", pthread_rwlock_rdlock(&rw), EDEADLK);
    check_errno_name("rwlock wrlock by writer", pthread_rwlock_wrlock(&rw), EDEADLK);
    check_errno_name("rwlock unlock", pthread_rwlock_unlock(&rw), 0);
    pthread_rwlock_destroy(&rw);
  }

  /* requeue from a futex word onto itself, 3 waiters */
  {
    pthread_t fw[3];
    for (int i = 0; i < 3; i++)
      if (pthread_create(&fw[i], NULL, futex_waiter, NULL) != 0) return 1;
    while (atomic_load(&g_fw_started) < 3) sched_yield();
    /* Wakes nobody; counts the waiters once all three sleep (bounded). */
    long n = 0;
    for (int tries = 0; tries < 400; tries++) {
      n = syscall(SYS_futex, &g_fw, FUTEX_CMP_REQUEUE_PRIVATE, 0, 100, &g_fw, 0);
      if (n == 3) break;
      sleep_ms(5);
    }
    check("cmp_requeue onto itself, wake 0", n, 3);
    check("requeue onto itself, wake 0, move 1", syscall(SYS_futex, &g_fw, FUTEX_REQUEUE_PRIVATE, 0, 1, &g_fw, 0), 1);
    errno = 0;
    check("cmp_requeue onto itself, value differs",
          syscall(SYS_futex, &g_fw, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &g_fw, 7), -1);
    check_errno_name("cmp_requeue onto itself, value differs errno", errno, EAGAIN);
    atomic_store(&g_fw, 1);
    /* One woken, the other two counted as requeued. */
    check("cmp_requeue onto itself, wake 1", syscall(SYS_futex, &g_fw, FUTEX_CMP_REQUEUE_PRIVATE, 1, INT_MAX, &g_fw, 1),
          3);
    long left = 0;
    for (int tries = 0; tries < 400 && left < 2; tries++) {
      long r = syscall(SYS_futex, &g_fw, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
      if (r > 0) left += r;
      if (left < 2) sleep_ms(5);
    }
    check("wake the other two", left, 2);
    for (int i = 0; i < 3; i++) pthread_join(fw[i], NULL);
  }

  /* concurrency */
  check("getconcurrency initial", pthread_getconcurrency(), 0);
  check_errno_name("setconcurrency 4", pthread_setconcurrency(4), 0);
  check("getconcurrency after 4", pthread_getconcurrency(), 4);
  check_errno_name("setconcurrency -1", pthread_setconcurrency(-1), EINVAL);
  check("getconcurrency after -1", pthread_getconcurrency(), 4);
  check_errno_name("setconcurrency 0", pthread_setconcurrency(0), 0);
  check("getconcurrency after 0", pthread_getconcurrency(), 0);

  /* yields */
  check("sched_yield", sched_yield(), 0);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  check("pthread_yield", pthread_yield(), 0);
#pragma GCC diagnostic pop

  printf("mismatches: %d\n", g_bad);
  return g_bad == 0 ? 0 : 1;
}
