/* tid_per_g — every thread has its own thread id, and the kernel calls that
 * take a thread id accept it (issue 9, item 1).
 *
 *   (a) 20 threads: gettid() == syscall(SYS_gettid), != getpid(), distinct
 *       across threads and from main's; main's == getpid();
 *   (b) tgkill(getpid(), tid, SIGUSR1) (glibc's wrapper and the raw
 *       syscall) and tkill run the handler on that thread (the handler
 *       records gettid() and pthread_self()), for a thread in a busy loop
 *       and for threads blocked in usleep, read on an empty pipe and poll:
 *       those calls fail with EINTR, as natively (handler without
 *       SA_RESTART); a thread signalling itself runs the handler before
 *       tgkill returns;
 *   (c) kill of a thread's id (the process's signal: the handler runs
 *       once); sched_getaffinity, sched_setaffinity (with the mask read back),
 *       sched_getparam, sched_getscheduler, getpriority(PRIO_PROCESS) and
 *       ioprio_get of a live thread's id succeed (through the wrappers and
 *       through syscall()); sched_setscheduler(SCHED_OTHER) too; and
 *       sched_getattr/sched_setattr through syscall();
 *   (d) a finished (joined) thread's id, and an id that is neither a thread
 *       nor a process: ESRCH from tgkill, sched_getaffinity, sched_getparam,
 *       getpriority; tgkill with another process's tgid: ESRCH;
 *   (e) pidfd_open of a thread's id without PIDFD_THREAD: the kernel's
 *       answer for a thread that is not its process's leader; of getpid():
 *       a pidfd;
 *   (f) fork from a thread: in the child gettid() == getpid() ==
 *       syscall(SYS_gettid), tgkill to itself runs the handler there, and
 *       3 new threads get distinct ids other than the child's pid;
 *   (g) set_tid_address in a detached thread returns its gettid(), and when
 *       the thread exits the word is zeroed and a futex waiter on it woken
 *       (stress-ng's pthread stressor checks the first).
 * stdout: one "name: ok" line per check; "not ok" and a FAIL line on stderr,
 * exit 1, otherwise. SIGALRM after 60 s (default action) ends a hung run. */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 20 };

static atomic_int g_kill_hits;
static void on_kill_sig(int s) {
  (void)s;
  atomic_fetch_add(&g_kill_hits, 1);
}

static int g_failures;

static void report(const char* name, int ok, const char* detail) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  if (!ok) {
    fprintf(stderr, "FAIL %s: %s\n", name, detail ? detail : "");
    g_failures++;
  }
}

/* ---- (a) ids ---------------------------------------------------------- */

static pid_t g_ids[kThreads];
static int g_id_agree[kThreads];
static pthread_barrier_t g_bar;

static void* id_thread(void* a) {
  long i = (long)a;
  g_ids[i] = gettid();
  g_id_agree[i] = g_ids[i] == (pid_t)syscall(SYS_gettid);
  /* All alive at once, so no id can have been reused. */
  pthread_barrier_wait(&g_bar);
  return NULL;
}

static void check_ids(void) {
  pthread_t th[kThreads];
  pthread_barrier_init(&g_bar, NULL, kThreads);
  for (long i = 0; i < kThreads; i++) pthread_create(&th[i], NULL, id_thread, (void*)i);
  for (int i = 0; i < kThreads; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&g_bar);
  int agree = 1, notpid = 1, distinct = 1;
  for (int i = 0; i < kThreads; i++) {
    agree &= g_id_agree[i];
    notpid &= g_ids[i] != getpid() && g_ids[i] > 0;
    for (int j = 0; j < i; j++) distinct &= g_ids[i] != g_ids[j];
  }
  char d[128];
  snprintf(d, sizeof d, "agree=%d notpid=%d distinct=%d first=%d pid=%d", agree, notpid, distinct, g_ids[0], getpid());
  report("gettid == syscall(SYS_gettid) in every thread", agree, d);
  report("thread ids differ from the pid", notpid, d);
  report("thread ids distinct", distinct, d);
  report("main's gettid == getpid", gettid() == getpid() && syscall(SYS_gettid) == getpid(), d);
}

/* ---- (b) signals to a thread id ---------------------------------------- */

static atomic_int g_handled;
static _Atomic pid_t g_h_tid;
static _Atomic(pthread_t) g_h_self;

static void on_usr1(int sig) {
  (void)sig;
  atomic_store(&g_h_tid, gettid());
  atomic_store(&g_h_self, pthread_self());
  atomic_fetch_add(&g_handled, 1);
}

enum Kind { kBusy, kSleep, kRead, kPoll };
struct Target {
  enum Kind kind;
  int fd; /* kRead, kPoll: an empty pipe's read end */
  _Atomic pid_t tid;
  atomic_int ready; /* about to block / looping */
  atomic_int stop;
  long rv; /* the blocking call's result */
  int err;
};

static void* target_main(void* a) {
  struct Target* t = a;
  atomic_store(&t->tid, gettid());
  atomic_store(&t->ready, 1);
  char c;
  struct pollfd p = {t->fd, POLLIN, 0};
  errno = 0;
  switch (t->kind) {
    case kBusy: {
      volatile unsigned long x = 0;
      while (!atomic_load(&t->stop)) x++;
      t->rv = 0;
      break;
    }
    case kSleep:
      t->rv = usleep(20 * 1000 * 1000);
      break;
    case kRead:
      t->rv = read(t->fd, &c, 1);
      break;
    case kPoll:
      t->rv = poll(&p, 1, 20000);
      break;
  }
  t->err = errno;
  return NULL;
}

static long send_sig(int how, pid_t tid, int sig) {
  switch (how) {
    case 0:
      return tgkill(getpid(), tid, sig);
    case 1:
      return syscall(SYS_tgkill, getpid(), tid, sig);
    default:
      return syscall(SYS_tkill, tid, sig);
  }
}

static const char* kHow[] = {"tgkill", "syscall(SYS_tgkill)", "syscall(SYS_tkill)"};
static const char* kKind[] = {"busy loop", "usleep", "read", "poll"};

static int wait_handled(int before) {
  for (int i = 0; i < 5000 && atomic_load(&g_handled) == before; i++) usleep(1000);
  return atomic_load(&g_handled) != before;
}

static void signal_target(enum Kind kind, int how) {
  struct Target t = {0};
  t.kind = kind;
  int pfd[2];
  if (pipe(pfd) != 0) exit(1);
  t.fd = pfd[0];
  pthread_t th;
  pthread_create(&th, NULL, target_main, &t);
  while (!atomic_load(&t.ready)) usleep(1000);
  usleep(50 * 1000); /* let it block */
  int before = atomic_load(&g_handled);
  long r = send_sig(how, atomic_load(&t.tid), SIGUSR1);
  int sent = r == 0;
  int ran = sent && wait_handled(before);
  int on_target = ran && atomic_load(&g_h_tid) == atomic_load(&t.tid) && pthread_equal(atomic_load(&g_h_self), th);
  atomic_store(&t.stop, 1);
  pthread_join(th, NULL);
  int eintr = kind == kBusy || (t.rv == -1 && t.err == EINTR);
  char name[96], d[160];
  snprintf(name, sizeof name, "%s to a thread in %s: handler on it%s", kHow[how], kKind[kind],
           kind == kBusy ? "" : ", EINTR");
  snprintf(d, sizeof d, "sent=%d ran=%d on_target=%d rv=%ld err=%d", sent, ran, on_target, t.rv, t.err);
  report(name, sent && ran && on_target && eintr, d);
  close(pfd[0]);
  close(pfd[1]);
}

static void* self_signal(void* a) {
  int* ok = a;
  int before = atomic_load(&g_handled);
  long r = tgkill(getpid(), gettid(), SIGUSR1);
  /* Natively the handler has run before tgkill returns. */
  *ok = r == 0 && atomic_load(&g_handled) == before + 1 && atomic_load(&g_h_tid) == gettid() &&
        pthread_equal(atomic_load(&g_h_self), pthread_self());
  return NULL;
}

static void check_signals(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: blocked calls fail with EINTR */
  for (int how = 0; how < 3; how++)
    for (int kind = 0; kind < 4; kind++) signal_target((enum Kind)kind, how);
  int ok = 0;
  pthread_t th;
  pthread_create(&th, NULL, self_signal, &ok);
  pthread_join(th, NULL);
  report("tgkill to itself: handler ran before it returned", ok, "");
}

/* ---- (c), (d), (e) other calls taking a thread id ---------------------- */

static void* parked(void* a) {
  struct Target* t = a;
  atomic_store(&t->tid, gettid());
  atomic_store(&t->ready, 1);
  while (!atomic_load(&t->stop)) usleep(1000);
  return NULL;
}

static int errno_of(long r) { return r == -1 ? errno : 0; }

static void check_calls(void) {
  struct Target t = {0};
  pthread_t th;
  pthread_create(&th, NULL, parked, &t);
  while (!atomic_load(&t.ready)) usleep(1000);
  pid_t tid = atomic_load(&t.tid);

  cpu_set_t set, proc;
  CPU_ZERO(&set);
  CPU_ZERO(&proc);
  sched_getaffinity(0, sizeof proc, &proc);
  int aff = sched_getaffinity(tid, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0;
  aff = aff && sched_setaffinity(tid, sizeof set, &set) == 0;
  aff = aff && syscall(SYS_sched_getaffinity, tid, sizeof set, &set) > 0;
  report("sched_getaffinity/sched_setaffinity of a thread id", aff, "");

  struct sched_param sp = {0};
  int par = sched_getparam(tid, &sp) == 0 && sp.sched_priority == 0 && sched_getscheduler(tid) == SCHED_OTHER;
  sp.sched_priority = 0;
  par = par && sched_setscheduler(tid, SCHED_OTHER, &sp) == 0 && sched_setparam(tid, &sp) == 0;
  par = par && syscall(SYS_sched_getscheduler, tid) == SCHED_OTHER;
  report("sched_getparam/sched_getscheduler/sched_setscheduler of a thread id", par, "");

  errno = 0;
  int pr = getpriority(PRIO_PROCESS, (id_t)tid);
  int prio = errno == 0 && pr == getpriority(PRIO_PROCESS, 0);
  report("getpriority(PRIO_PROCESS) of a thread id", prio, "");

  /* GLib copies its scheduler settings into each pool thread this way
   * (no glibc wrappers): read, then written back with nice one higher,
   * which getpriority then sees. */
  struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
  } at = {0};
  int attr = syscall(SYS_sched_getattr, tid, &at, sizeof at, 0) == 0 && at.policy == SCHED_OTHER && at.nice == pr;
  at.nice = pr + 1;
  attr = attr && syscall(SYS_sched_setattr, tid, &at, 0) == 0 && getpriority(PRIO_PROCESS, (id_t)tid) == pr + 1;
  report("sched_getattr/sched_setattr of a thread id", attr, "");

  /* kill of a thread's id names the thread's process: a null signal
   * succeeds, and a real one runs the process's handler once. */
  atomic_store(&g_kill_hits, 0);
  struct sigaction ka = {0}, kold;
  ka.sa_handler = on_kill_sig;
  sigaction(SIGUSR2, &ka, &kold);
  int kz = kill(tid, 0) == 0 && syscall(SYS_kill, tid, 0) == 0;
  int ks = kill(tid, SIGUSR2) == 0;
  for (int i = 0; i < 2000 && atomic_load(&g_kill_hits) == 0; i++) usleep(1000);
  sigaction(SIGUSR2, &kold, NULL);
  report("kill of a thread id: the process's signal", kz && ks && atomic_load(&g_kill_hits) == 1, "");

  long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, tid);
  report("ioprio_get of a thread id", io >= 0 && io == syscall(SYS_ioprio_get, 1, 0), "");

  /* The kernel's answer for a thread that leads no thread group (EINVAL
   * before Linux 6.15 or so, ENOENT since): printed, so both runs agree. */
  errno = 0;
  long pfd = syscall(SYS_pidfd_open, tid, 0);
  printf("pidfd_open of a thread id: %s\n", pfd >= 0 ? "a pidfd" : strerrorname_np(errno));
  if (pfd >= 0) close((int)pfd);
  pfd = syscall(SYS_pidfd_open, getpid(), 0);
  report("pidfd_open of the pid: a pidfd", pfd >= 0, "");
  if (pfd >= 0) close((int)pfd);

  atomic_store(&t.stop, 1);
  pthread_join(th, NULL);

  /* The thread is gone. Natively its task may take a moment to be released
   * after the join; wait for ESRCH from a null signal. */
  int gone = 0;
  for (int i = 0; i < 1000 && !gone; i++) {
    if (tgkill(getpid(), tid, 0) == -1 && errno == ESRCH) gone = 1;
    else usleep(1000);
  }
  int e1 = errno_of(tgkill(getpid(), tid, SIGUSR1));
  int e2 = errno_of(sched_getaffinity(tid, sizeof set, &set));
  report("a finished thread's id: ESRCH", gone && e1 == ESRCH && e2 == ESRCH, "");

  pid_t bogus = 0x10000000; /* above any pid_max */
  int eb = errno_of(tgkill(getpid(), bogus, 0)) == ESRCH && errno_of(syscall(SYS_tkill, bogus, 0)) == ESRCH &&
           errno_of(sched_getaffinity(bogus, sizeof set, &set)) == ESRCH &&
           errno_of(sched_getparam(bogus, &sp)) == ESRCH;
  errno = 0;
  eb = eb && getpriority(PRIO_PROCESS, (id_t)bogus) == -1 && errno == ESRCH;
  report("an id that is no thread: ESRCH", eb, "");

  /* A live thread's id with another process's tgid (init's). */
  t = (struct Target){0};
  pthread_create(&th, NULL, parked, &t);
  while (!atomic_load(&t.ready)) usleep(1000);
  report("tgkill with another tgid: ESRCH", errno_of(tgkill(1, atomic_load(&t.tid), 0)) == ESRCH, "");
  atomic_store(&t.stop, 1);
  pthread_join(th, NULL);
}

/* ---- (f) fork --------------------------------------------------------- */

static void* child_thread(void* a) {
  *(pid_t*)a = gettid();
  return NULL;
}

static void* forker(void* a) {
  int* status = a;
  pid_t p = fork();
  if (p == 0) {
    int bits = 0;
    if (gettid() != getpid() || syscall(SYS_gettid) != getpid()) bits |= 1;
    int before = atomic_load(&g_handled);
    if (tgkill(getpid(), gettid(), SIGUSR1) != 0 || atomic_load(&g_handled) != before + 1 ||
        atomic_load(&g_h_tid) != getpid())
      bits |= 2;
    pid_t ids[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, child_thread, &ids[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    if (ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2]) bits |= 4;
    for (int i = 0; i < 3; i++)
      if (ids[i] == getpid() || ids[i] <= 0) bits |= 8;
    _exit(bits);
  }
  int st = -1;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  *status = st;
  return NULL;
}

static void check_fork(void) {
  int st = -1;
  pthread_t th;
  pthread_create(&th, NULL, forker, &st);
  pthread_join(th, NULL);
  char d[64];
  snprintf(d, sizeof d, "child status %#x", st);
  report("fork from a thread: child's gettid == getpid, handler, fresh thread ids",
         WIFEXITED(st) && WEXITSTATUS(st) == 0, d);
}

static _Atomic uint32_t g_clear_word = 1;
static _Atomic long g_set_tid_result;
static _Atomic long g_set_tid_self;

static void* set_tid_thread(void* a) {
  (void)a;
  atomic_store(&g_set_tid_self, (long)gettid());
  atomic_store(&g_set_tid_result, syscall(SYS_set_tid_address, &g_clear_word));
  return NULL;
}

static void check_set_tid_address(void) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  if (pthread_create(&th, &at, set_tid_thread, NULL) != 0) {
    report("set_tid_address", 0, "create failed");
    return;
  }
  /* The kernel zeroes the word and wakes one waiter (FUTEX_WAKE) when the
   * thread exits. */
  for (int i = 0; i < 50 && atomic_load(&g_clear_word) != 0; i++) {
    struct timespec ts = {0, 100 * 1000000L};
    syscall(SYS_futex, &g_clear_word, FUTEX_WAIT, 1, &ts, NULL, 0);
  }
  char d[96];
  snprintf(d, sizeof d, "returned %ld, gettid %ld, word %u", atomic_load(&g_set_tid_result),
           atomic_load(&g_set_tid_self), (unsigned)atomic_load(&g_clear_word));
  report("set_tid_address returns the thread's id", atomic_load(&g_set_tid_result) == atomic_load(&g_set_tid_self), d);
  report("set_tid_address word cleared at thread exit", atomic_load(&g_clear_word) == 0, d);
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  check_ids();
  check_signals();
  check_calls();
  check_fork();
  check_set_tid_address();
  printf("tid_per_g: %s\n", g_failures ? "not ok" : "ok");
  return g_failures ? 1 : 0;
}
