/* sig_per_g — signals follow the kernel's per-thread model for every thread.
 *
 * Interleavings this reproduces (issue 8): threads parked in usleep are
 * pthread_kill'ed; under the shim the signal went to the process and the
 * handler ran on whichever kernel thread the kernel chose, not on the named
 * thread. Masks were per kernel thread, so a thread that blocked a signal
 * could see it run while "blocked" once another thread shared its M.
 *
 *   (a) pthread_kill to each of 16 threads parked in usleep: the handler
 *       runs once, on that thread (a __thread index);
 *   (b) a thread that blocks SIGUSR1 is pthread_kill'ed: sigpending shows it,
 *       the handler has not run; it runs on that thread exactly when the
 *       thread unblocks SIGUSR1 (before pthread_sigmask returns);
 *   (c) pthread_attr_setsigmask_np: the child starts with that mask;
 *   (d) a thread inherits its creator's mask at pthread_create;
 *   (e) pthread_sigmask's old set reads back what was set, SIGURG included;
 *   (f) kill(getpid()) while every thread but one blocks SIGUSR2: the
 *       handler runs on that one;
 *   (g) 4 threads in sigwaitinfo for SIGRTMIN+4 (blocked everywhere) and 4
 *       process-directed kills, one at a time: each thread gets one and
 *       the handler installed for it never runs;
 *   (h) mariadb's pattern: main blocks SIGTERM and SIGQUIT, a signal thread
 *       sigwaits for both; pthread_kill(sigthread, SIGQUIT) ends its sigwait;
 *   (i) main blocks SIGURG (the runtime's own signal under the shim, which
 *       the kernel never blocks there): raise, pthread_kill to itself and a
 *       process-directed kill stay pending (merged into one per pending
 *       set: 2 runs) until it unblocks it.
 * stdout: fixed lines; a failure prints "not ok" and exits 1. SIGALRM after
 * 60 s (default action) kills a hung run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

static __thread int my_index = -1;
static atomic_int g_hits[17]; /* handler runs per index; 16 = no index */
static atomic_int g_stop;

static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&g_hits[my_index >= 0 && my_index < 16 ? my_index : 16], 1);
}

static void* sleeper(void* a) {
  my_index = (int)(long)a;
  while (!atomic_load(&g_stop)) usleep(1000);
  return NULL;
}

static void part_a(void) {
  pthread_t t[16];
  memset(g_hits, 0, sizeof g_hits);
  atomic_store(&g_stop, 0);
  for (long i = 0; i < 16; i++) pthread_create(&t[i], NULL, sleeper, (void*)i);
  usleep(50000);
  for (int i = 0; i < 16; i++) pthread_kill(t[i], SIGUSR1);
  for (int w = 0; w < 400; w++) {
    int n = 0;
    for (int i = 0; i < 16; i++) n += atomic_load(&g_hits[i]);
    if (n + atomic_load(&g_hits[16]) >= 16) break;
    usleep(5000);
  }
  atomic_store(&g_stop, 1);
  int ok = 0;
  for (int i = 0; i < 16; i++) {
    pthread_join(t[i], NULL);
    ok += atomic_load(&g_hits[i]) == 1;
  }
  printf("(a) pthread_kill to 16 parked threads: %d ran on their thread, %d elsewhere\n", ok, atomic_load(&g_hits[16]));
}

static atomic_int g_b_phase;
static void* blocker(void* a) {
  (void)a;
  my_index = 3;
  sigset_t s, p;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  atomic_store(&g_b_phase, 1);
  while (atomic_load(&g_b_phase) != 2) usleep(1000);
  usleep(50000); /* the signal has had every chance to run */
  sigpending(&p);
  int pend = sigismember(&p, SIGUSR1);
  int before = atomic_load(&g_hits[3]);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  int after = atomic_load(&g_hits[3]);
  sigpending(&p);
  printf("(b) blocked: pending=%d ran=%d; after unblock: ran=%d pending=%d elsewhere=%d\n", pend, before, after,
         sigismember(&p, SIGUSR1), atomic_load(&g_hits[16]));
  return NULL;
}

static void part_b(void) {
  memset(g_hits, 0, sizeof g_hits);
  pthread_t t;
  pthread_create(&t, NULL, blocker, NULL);
  while (atomic_load(&g_b_phase) != 1) usleep(1000);
  pthread_kill(t, SIGUSR1);
  atomic_store(&g_b_phase, 2);
  pthread_join(t, NULL);
}

static void* mask_probe(void* a) {
  (void)a;
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  long bits = 0;
  if (sigismember(&cur, SIGUSR2)) bits |= 1;
  if (sigismember(&cur, SIGURG)) bits |= 2;
  if (sigismember(&cur, SIGHUP)) bits |= 4;
  return (void*)bits;
}

static void part_cde(void) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  sigset_t m2, old, cur;
  sigemptyset(&m2);
  sigaddset(&m2, SIGUSR2);
  int rc = pthread_attr_setsigmask_np(&at, &m2);
  pthread_t p;
  void* v;
  pthread_create(&p, &at, mask_probe, NULL);
  pthread_join(p, &v);
  pthread_attr_destroy(&at);
  printf("(c) attr_setsigmask_np rc=%d child mask bits=%ld\n", rc, (long)v);

  sigemptyset(&m2);
  sigaddset(&m2, SIGHUP);
  sigaddset(&m2, SIGURG);
  pthread_sigmask(SIG_BLOCK, &m2, &old);
  pthread_create(&p, NULL, mask_probe, NULL);
  pthread_join(p, &v);
  printf("(d) inherited mask bits=%ld\n", (long)v);
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  sigemptyset(&m2);
  sigaddset(&m2, SIGURG);
  sigaddset(&m2, SIGWINCH);
  pthread_sigmask(SIG_SETMASK, &m2, &old);
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  int same = 1;
  for (int s = 1; s < 65; s++)
    if (s != 32 && s != 33 && sigismember(&cur, s) != sigismember(&m2, s)) same = 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  sigprocmask(SIG_BLOCK, NULL, &cur);
  printf("(e) old set reads back as set: %d; SIGURG after restore: %d\n", same, sigismember(&cur, SIGURG));
}

static __thread int f_me;
static atomic_int g_f_right, g_f_wrong;
static void on_usr2(int sig) {
  (void)sig;
  if (f_me) atomic_fetch_add(&g_f_right, 1);
  else atomic_fetch_add(&g_f_wrong, 1);
}
static void* f_thread(void* a) {
  if (a) {
    f_me = 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  }
  while (!atomic_load(&g_stop)) usleep(1000);
  return NULL;
}

static void part_f(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, &old);
  atomic_store(&g_stop, 0);
  pthread_t t[5];
  for (long i = 0; i < 5; i++) pthread_create(&t[i], NULL, f_thread, (void*)(long)(i == 2));
  usleep(50000);
  for (int k = 0; k < 5; k++) {
    kill(getpid(), SIGUSR2);
    for (int w = 0; w < 400 && atomic_load(&g_f_right) + atomic_load(&g_f_wrong) <= k; w++) usleep(5000);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  printf("(f) process-directed, one thread open: right=%d wrong=%d\n", atomic_load(&g_f_right),
         atomic_load(&g_f_wrong));
}

static void* rt_waiter(void* a) {
  (void)a;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGRTMIN + 4);
  siginfo_t si;
  int r;
  /* EINTR: natively the kernel wakes the other waiters when a sibling
   * thread exits (it retargets the shared pending signals). */
  do r = sigwaitinfo(&s, &si);
  while (r < 0 && errno == EINTR);
  return (void*)(long)(r == SIGRTMIN + 4);
}

static atomic_int g_rt_handled;
static void on_rt(int sig) {
  (void)sig;
  atomic_fetch_add(&g_rt_handled, 1);
}

static void part_g(void) {
  /* A handler, not the default action: a signal that slipped past every
   * sigwaitinfo is counted rather than fatal. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_rt;
  sigaction(SIGRTMIN + 4, &sa, NULL);
  sigset_t rt, old;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN + 4);
  pthread_sigmask(SIG_BLOCK, &rt, &old);
  pthread_t r[4];
  for (int i = 0; i < 4; i++) pthread_create(&r[i], NULL, rt_waiter, NULL);
  usleep(100000);
  for (int i = 0; i < 4; i++) {
    kill(getpid(), SIGRTMIN + 4);
    usleep(50000);
  }
  int got = 0;
  for (int i = 0; i < 4; i++) {
    void* v;
    pthread_join(r[i], &v);
    got += (int)(long)v;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  printf("(g) sigwaitinfo x4, 4 kills: %d got one, handler ran %d\n", got, atomic_load(&g_rt_handled));
}

static void* sig_thread(void* a) {
  (void)a;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGQUIT);
  int sig = 0;
  int r = sigwait(&s, &sig);
  return (void*)(long)(r == 0 ? sig : -r);
}

static void part_h(void) {
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &s, &old);
  pthread_t t;
  pthread_create(&t, NULL, sig_thread, NULL);
  usleep(100000);
  pthread_kill(t, SIGQUIT);
  void* v;
  pthread_join(t, &v);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  printf("(h) sigwait in the signal thread got: %s\n", (long)v == SIGQUIT ? "SIGQUIT" : "something else");
}

static volatile sig_atomic_t g_urg;
static void on_urg(int sig) {
  (void)sig;
  g_urg++;
}

static void part_i(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_urg;
  sigaction(SIGURG, &sa, NULL);
  sigset_t u, p;
  sigemptyset(&u);
  sigaddset(&u, SIGURG);
  pthread_sigmask(SIG_BLOCK, &u, NULL);
  raise(SIGURG);
  pthread_kill(pthread_self(), SIGURG);
  kill(getpid(), SIGURG);
  usleep(20000);
  sigpending(&p);
  int before = g_urg, pend = sigismember(&p, SIGURG);
  pthread_sigmask(SIG_UNBLOCK, &u, NULL);
  for (int w = 0; w < 100 && g_urg < 2; w++) usleep(2000);
  usleep(20000);
  printf("(i) SIGURG blocked: ran=%d pending=%d; after unblock: ran=%d\n", before, pend, (int)g_urg);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  mnp_report_shim();
  alarm(60);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  part_a();
  part_b();
  part_cde();
  part_f();
  part_g();
  part_h();
  part_i();
  printf("done\n");
  return 0;
}
