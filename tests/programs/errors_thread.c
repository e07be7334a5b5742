/* errors_thread — return values and errno of the thread-management calls
 * at their edges, natively and under the shim (issue 8, item 7).
 *
 * pthread_create with attributes (explicit SCHED_OTHER) and errno kept,
 * joins with bad or past timespecs and bad clocks (on a running thread and
 * on a finished one), pthread_kill with signal 0, glibc's internal signals
 * and out-of-range ones, on self, on a running thread and on a finished
 * one; scheduling calls (pthread_ and sched_) with bad policies,
 * priorities, pids and sizes; affinity with empty, short and null sets;
 * cancel state and type; keys (bad keys, the key limit); tgkill, raise,
 * pidfd_open; pthread_getcpuclockid and the clock it names; thread names.
 * Each line prints the value and errno (errors_common.h); the runner
 * compares them with glibc's. Nothing asks for real-time rights. */
#include <errno.h>
#include <limits.h>
#include <sys/pidfd.h>
#include <pthread.h>
#include <sched.h>
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

#include "errors_common.h"
#include "mnp_check.h"

static const struct timespec kBadNsec = {0, 1000000000L};
static const struct timespec kPast = {1, 0};
static const struct timespec kNegSec = {-1, 0};

static atomic_int g_release;
static void* spinner(void* arg) {
  (void)arg;
  while (!atomic_load(&g_release)) usleep(1000);
  return (void*)7;
}
static void* quick(void* arg) { return arg; }

/* Waits until thread t has finished: glibc's thread descriptor holds the
 * kernel's id of the thread (offset 720 in glibc 2.36 on x86_64), which the
 * kernel clears when the thread ends (CLONE_CHILD_CLEARTID) and the shim
 * when the G ends. A fixed sleep was not enough on a loaded machine: the
 * thread still ran, and the SIGUSR1 below killed the native run. */
static void wait_finished(pthread_t t) {
  volatile int* tid = (volatile int*)((char*)t + 720);
  for (int i = 0; i < 10000 && *tid != 0; i++) usleep(1000);
}
static void* slow(void* arg) {
  usleep(50 * 1000);
  return arg;
}

static int g_pol, g_prio;
static void* sched_reporter(void* arg) {
  (void)arg;
  struct sched_param sp = {-1};
  g_pol = -1;
  pthread_getschedparam(pthread_self(), &g_pol, &sp);
  g_prio = sp.sched_priority;
  return NULL;
}

static void create_checks(void) {
  pthread_attr_t a;
  pthread_t t;
  pthread_attr_init(&a);
  CHECK_EN("attr: setscope process", pthread_attr_setscope(&a, PTHREAD_SCOPE_PROCESS));
  CHECK_EN("attr: setschedpolicy 99", pthread_attr_setschedpolicy(&a, 99));
  CHECK_EN("attr: setinheritsched 99", pthread_attr_setinheritsched(&a, 99));
  CHECK_EN("attr: setdetachstate 99", pthread_attr_setdetachstate(&a, 99));
  CHECK_EN("attr: setguardsize huge", pthread_attr_setguardsize(&a, SIZE_MAX));
  pthread_attr_destroy(&a);

  pthread_attr_init(&a);
  pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&a, SCHED_OTHER);
  struct sched_param sp = {0};
  pthread_attr_setschedparam(&a, &sp);
  CHECK_EN("create: explicit SCHED_OTHER", pthread_create(&t, &a, sched_reporter, NULL));
  pthread_join(t, NULL);
  printf("created thread: policy %d priority %d\n", g_pol, g_prio);
  pthread_attr_destroy(&a);

  pthread_attr_init(&a);
  pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&a, SCHED_BATCH);
  CHECK_EN("create: explicit SCHED_BATCH", pthread_create(&t, &a, sched_reporter, NULL));
  pthread_join(t, NULL);
  printf("created thread: policy %d priority %d\n", g_pol, g_prio);
  pthread_attr_destroy(&a);

  /* (a create whose attribute names no usable CPU is EINVAL or 0 natively,
   * depending on a race inside glibc: not checked) */
}

static void join_checks(void) {
  pthread_t t;
  void* res = NULL;
  struct timespec pm;
  clock_gettime(CLOCK_MONOTONIC, &pm);
  pm.tv_sec -= 1;
  atomic_store(&g_release, 0);
  pthread_create(&t, NULL, spinner, NULL);
  CHECK_EN("timedjoin running: past", pthread_timedjoin_np(t, &res, &kPast));
  CHECK_EN("timedjoin running: negative sec", pthread_timedjoin_np(t, &res, &kNegSec));
  CHECK_EN("clockjoin running: monotonic past", pthread_clockjoin_np(t, &res, CLOCK_MONOTONIC, &pm));
  CHECK_EN("clockjoin running: cputime clock", pthread_clockjoin_np(t, &res, CLOCK_PROCESS_CPUTIME_ID, &pm));
  CHECK_EN("clockjoin running: clock 99", pthread_clockjoin_np(t, &res, 99, &pm));
  CHECK_EN("tryjoin running", pthread_tryjoin_np(t, &res));
  CHECK_EN("kill running: 0", pthread_kill(t, 0));
  CHECK_EN("kill running: 65", pthread_kill(t, 65));
  CHECK_EN("kill running: -1", pthread_kill(t, -1));
  CHECK_EN("kill running: SIGCANCEL (32)", pthread_kill(t, 32));
  CHECK_EN("kill running: SIGSETXID (33)", pthread_kill(t, 33));
  int pol = -1;
  struct sched_param sp = {-1};
  CHECK_EN("getschedparam running", pthread_getschedparam(t, &pol, &sp));
  printf("running: policy %d priority %d\n", pol, sp.sched_priority);
  CHECK_EN("setschedparam running: policy 99", pthread_setschedparam(t, 99, &sp));
  atomic_store(&g_release, 1);
  CHECK_EN("join running", pthread_join(t, &res));
  printf("join running: value %ld\n", (long)(intptr_t)res);

  /* glibc waits without a limit when abstime is invalid */
  pthread_create(&t, NULL, slow, (void*)8);
  CHECK_EN("timedjoin running: bad nsec", pthread_timedjoin_np(t, &res, &kBadNsec));
  printf("timedjoin running bad nsec: value %ld\n", (long)(intptr_t)res);

  pthread_create(&t, NULL, quick, (void*)4);
  wait_finished(t);
  CHECK_EN("timedjoin finished: bad nsec", pthread_timedjoin_np(t, &res, &kBadNsec));
  printf("timedjoin finished: value %ld\n", (long)(intptr_t)res);

  pthread_create(&t, NULL, quick, (void*)5);
  wait_finished(t);
  CHECK_EN("clockjoin finished: clock 99", pthread_clockjoin_np(t, &res, 99, &pm));
  printf("clockjoin finished: value %ld\n", (long)(intptr_t)res);

  pthread_create(&t, NULL, quick, (void*)6);
  wait_finished(t);
  CHECK_EN("kill finished: 0", pthread_kill(t, 0));
  CHECK_EN("kill finished: SIGUSR1", pthread_kill(t, SIGUSR1));
  CHECK_EN("kill finished: 65", pthread_kill(t, 65));
  CHECK_EN("getschedparam finished", pthread_getschedparam(t, &pol, &sp));
  CHECK_EN("setschedprio finished", pthread_setschedprio(t, 0));
  CHECK_EN("cancel finished", pthread_cancel(t));
  clockid_t ck;
  CHECK_EN("getcpuclockid finished", pthread_getcpuclockid(t, &ck));
  char name[32];
  CHECK_EN("setname finished", pthread_setname_np(t, "x"));
  CHECK_EN("getname finished", pthread_getname_np(t, name, sizeof name));
  cpu_set_t cs;
  CHECK_EN("getaffinity finished", pthread_getaffinity_np(t, sizeof cs, &cs));
  CHECK_EN("join finished", pthread_join(t, &res));
  printf("join finished: value %ld\n", (long)(intptr_t)res);
}

static void self_checks(void) {
  pthread_t me = pthread_self();
  CHECK_EN("kill self: 0", pthread_kill(me, 0));
  CHECK_EN("kill self: 65", pthread_kill(me, 65));
  CHECK_EN("kill self: 32", pthread_kill(me, 32));
  CHECK_EN("kill self: 33", pthread_kill(me, 33));
  CHECK_RC("raise 0", raise(0));
  CHECK_RC("raise 65", raise(65));
  CHECK_RC("raise -1", raise(-1));
  CHECK_RC("tgkill self 65", tgkill(getpid(), gettid(), 65));
  CHECK_RC("tgkill self 0", tgkill(getpid(), gettid(), 0));
  CHECK_RC("tgkill no such tid", tgkill(getpid(), 0x3ffffff0, 0));
  CHECK_RC("tgkill tid 0", tgkill(getpid(), 0, 0));
  CHECK_RC("tgkill tid -1", tgkill(getpid(), -1, 0));
  CHECK_RC("tgkill wrong tgid", tgkill(0x3ffffff0, gettid(), 0));

  int pol = -1;
  struct sched_param sp = {-1};
  CHECK_EN("getschedparam self", pthread_getschedparam(me, &pol, &sp));
  printf("self: policy %d priority %d\n", pol, sp.sched_priority);
  sp.sched_priority = 0;
  CHECK_EN("setschedparam self: policy 99", pthread_setschedparam(me, 99, &sp));
  CHECK_EN("setschedparam self: policy -1", pthread_setschedparam(me, -1, &sp));
  sp.sched_priority = 5;
  CHECK_EN("setschedparam self: OTHER priority 5", pthread_setschedparam(me, SCHED_OTHER, &sp));
  sp.sched_priority = 0;
  CHECK_EN("setschedparam self: FIFO priority 0", pthread_setschedparam(me, SCHED_FIFO, &sp));
  sp.sched_priority = 1000;
  CHECK_EN("setschedparam self: RR priority 1000", pthread_setschedparam(me, SCHED_RR, &sp));
  sp.sched_priority = 0;
  CHECK_EN("setschedparam self: OTHER 0", pthread_setschedparam(me, SCHED_OTHER, &sp));
  CHECK_EN("setschedprio self: 5", pthread_setschedprio(me, 5));
  CHECK_EN("setschedprio self: 0", pthread_setschedprio(me, 0));
  CHECK_EN("setschedprio self: -1", pthread_setschedprio(me, -1));
  pthread_getschedparam(me, &pol, &sp);
  printf("self after: policy %d priority %d\n", pol, sp.sched_priority);

  CHECK_RC("sched_getscheduler 0", sched_getscheduler(0));
  CHECK_RC("sched_getscheduler -1", sched_getscheduler(-1));
  CHECK_RC("sched_getscheduler no such pid", sched_getscheduler(0x3ffffff0));
  CHECK_RC("sched_getparam 0", sched_getparam(0, &sp));
  CHECK_RC("sched_getparam -1", sched_getparam(-1, &sp));
  CHECK_RC("sched_setparam 0 priority 5", sched_setparam(0, &(struct sched_param){5}));
  CHECK_RC("sched_setscheduler 0 policy 99", sched_setscheduler(0, 99, &(struct sched_param){0}));
  CHECK_RC("sched_setscheduler 0 OTHER 0", sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){0}));
  CHECK_RC("sched_setscheduler -1", sched_setscheduler(-1, SCHED_OTHER, &(struct sched_param){0}));
  struct timespec ts;
  CHECK_RC("sched_rr_get_interval -1", sched_rr_get_interval(-1, &ts));
  CHECK_RC("sched_rr_get_interval no such pid", sched_rr_get_interval(0x3ffffff0, &ts));
  errno = ERR_SENTINEL;
  int prio = getpriority(PRIO_PROCESS, 0);
  err_line("getpriority self", prio == -1 ? -1 : 0, errno);
  CHECK_RC("getpriority which 99", getpriority(99, 0));
  CHECK_RC("getpriority no such pid", getpriority(PRIO_PROCESS, 0x3ffffff0));
  CHECK_RC("setpriority which 99", setpriority(99, 0, 0));
  CHECK_RC("setpriority self same", setpriority(PRIO_PROCESS, 0, prio));
  CHECK_RC("setpriority thread self same", setpriority(PRIO_PROCESS, gettid(), prio));

  cpu_set_t cs;
  CPU_ZERO(&cs);
  CHECK_EN("getaffinity self: size 0", pthread_getaffinity_np(me, 0, &cs));
  CHECK_EN("getaffinity self: size 1", pthread_getaffinity_np(me, 1, &cs));
  CHECK_EN("setaffinity self: empty", pthread_setaffinity_np(me, sizeof cs, &cs));
  CPU_SET(1000, &cs);
  CHECK_EN("setaffinity self: cpu 1000 only", pthread_setaffinity_np(me, sizeof cs, &cs));
  CPU_ZERO(&cs);
  CHECK_RC("sched_getaffinity 0 size 0", sched_getaffinity(0, 0, &cs));
  CHECK_RC("sched_getaffinity 0 size 1", sched_getaffinity(0, 1, &cs));
  CHECK_RC("sched_getaffinity -1", sched_getaffinity(-1, sizeof cs, &cs));
  CHECK_RC("sched_getaffinity no such pid", sched_getaffinity(0x3ffffff0, sizeof cs, &cs));
  CHECK_RC("sched_setaffinity 0 empty", sched_setaffinity(0, sizeof cs, &cs));
  CHECK_RC("sched_setaffinity no such pid", sched_setaffinity(0x3ffffff0, sizeof cs, &cs));
  /* strace probes the mask size with a null set (EFAULT). */
  cpu_set_t* volatile null_set = NULL; /* glibc declares the pthread_ ones nonnull */
  CHECK_RC("sched_getaffinity 0 null set", sched_getaffinity(0, sizeof cs, null_set));
  CHECK_RC("sched_setaffinity 0 null set", sched_setaffinity(0, sizeof cs, null_set));
  CHECK_EN("getaffinity self: null set", pthread_getaffinity_np(me, sizeof cs, null_set));
  CHECK_EN("setaffinity self: null set", pthread_setaffinity_np(me, sizeof cs, null_set));

  CHECK_RC("pidfd_open self bad flags", pidfd_open(getpid(), 12345));
  CHECK_RC("pidfd_open -1", pidfd_open(-1, 0));
  CHECK_RC("pidfd_open no such pid", pidfd_open(0x3ffffff0, 0));
  CHECK_SYS("pidfd_open own thread", pidfd_open(gettid(), 0) >= 0);

  clockid_t ck;
  CHECK_EN("getcpuclockid self", pthread_getcpuclockid(me, &ck));
  CHECK_RC("clock_gettime on it", clock_gettime(ck, &ts));
  CHECK_RC("clock_getres on it", clock_getres(ck, &ts));

  int old = -1;
  CHECK_EN("setcancelstate 99", pthread_setcancelstate(99, &old));
  CHECK_EN("setcanceltype 99", pthread_setcanceltype(99, &old));
  CHECK_EN("setcancelstate enable, no old", pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL));
  CHECK_EN("setcanceltype deferred", pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old));
  printf("old cancel type %d\n", old);

  char name[32];
  CHECK_EN("setname self 16 chars", pthread_setname_np(me, "0123456789abcdef"));
  CHECK_EN("setname self empty", pthread_setname_np(me, ""));
  CHECK_EN("getname self size 0", pthread_getname_np(me, name, 0));
  CHECK_EN("getname self size 1", pthread_getname_np(me, name, 1));
  CHECK_EN("getname self size 16", pthread_getname_np(me, name, 16));
  printf("name: [%s]\n", name);

  pthread_attr_t a;
  CHECK_EN("getattr_np self", pthread_getattr_np(me, &a));
  int st = -1;
  pthread_attr_getdetachstate(&a, &st);
  printf("self detach state %d\n", st);
  size_t gs = 1;
  pthread_attr_getguardsize(&a, &gs);
  printf("self guard size %s\n", gs == 0 ? "0" : "nonzero");
  pthread_attr_destroy(&a);
}

static void key_checks(void) {
  pthread_key_t k;
  CHECK_EN("key_delete 5000", pthread_key_delete(5000));
  CHECK_EN("key_delete 1023 (never created)", pthread_key_delete(1023));
  CHECK_EN("setspecific 5000", pthread_setspecific(5000, &k));
  CHECK_EN("setspecific 1023 (never created)", pthread_setspecific(1023, &k));
  printf("getspecific 5000: %s\n", pthread_getspecific(5000) == NULL ? "null" : "set");
  static pthread_key_t keys[PTHREAD_KEYS_MAX + 1];
  int n = 0, r = 0;
  while (n <= PTHREAD_KEYS_MAX && (r = pthread_key_create(&keys[n], NULL)) == 0) n++;
  printf("key_create stopped with %s after %d keys\n", err_name(r), n);
  if (n > 0) {
    CHECK_EN("key_delete last", pthread_key_delete(keys[n - 1]));
    CHECK_EN("key_delete last again", pthread_key_delete(keys[n - 1]));
    CHECK_EN("setspecific deleted", pthread_setspecific(keys[n - 1], &k));
    CHECK_EN("key_create after delete", pthread_key_create(&keys[n - 1], NULL));
  }
  for (int i = 0; i < n; i++) pthread_key_delete(keys[i]);
}

int main(void) {
  mnp_report_shim();
  create_checks();
  join_checks();
  self_checks();
  key_checks();
  printf("done\n");
  return 0;
}
