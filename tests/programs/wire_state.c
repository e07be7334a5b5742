/* wire_state.c — per-thread kernel state survives a thread's parks, and
 * stays off other threads, while other threads keep running.
 *
 * The kernel keeps these per kernel thread; under the shim a thread that
 * parks (usleep, poll on a pipe, join) may resume on another kernel
 * thread, where, before wiring, the state was gone (and the kernel thread
 * it was left on passed it to whatever thread ran there next):
 *   name      prctl(PR_SET_NAME) in two threads, read back with
 *             PR_GET_NAME and /proc/thread-self/comm after every park;
 *   pdeath    PR_SET_PDEATHSIG read back after parks; and a child forked
 *             by a thread that then exits unreaped gets its parent-death
 *             signal (the kernel sends it when the forking thread ends:
 *             the forking thread's kernel thread must end with it);
 *   altstack  sigaltstack with an SA_ONSTACK handler, run by pthread_kill
 *             to itself after parks, on the thread's own alternate stack;
 *   uts       unshare(CLONE_NEWUTS) + sethostname in one thread: it sees
 *             its name after parks, the others never do.
 * Three worker threads park and check all the while that their own name
 * and host name stay those of the process. Stdout: one line per scenario. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile int stop_workers;
static int fail;
static char proc_name[16], host0[64];
static long long kthreads_max;

#define FAILF(...)                        \
  do {                                    \
    fprintf(stderr, "FAIL " __VA_ARGS__); \
    fail = 1;                             \
  } while (0)

static void* nap(void* a) {
  usleep(500);
  return a;
}
static void park_around(void) {
  int p[2];
  if (pipe(p) == 0) {
    struct pollfd pf = {p[0], POLLIN, 0};
    poll(&pf, 1, 2);
    close(p[0]);
    close(p[1]);
  }
  usleep(1000);
  pthread_t t;
  if (pthread_create(&t, NULL, nap, NULL) == 0) pthread_join(t, NULL);
  long long k = mnp_kernel_threads();
  if (k > kthreads_max) kthreads_max = k;
}

static void comm_of_self(char* out, size_t cap) {
  char buf[64];
  if (mnp_read_small_file("/proc/thread-self/comm", buf, sizeof buf) < 0) buf[0] = 0;
  buf[strcspn(buf, "\n")] = 0;
  snprintf(out, cap, "%s", buf);
}

static void* worker(void* a) {
  (void)a;
  while (!stop_workers) {
    park_around();
    char c[64], h[64];
    comm_of_self(c, sizeof c);
    gethostname(h, sizeof h);
    if (strcmp(c, proc_name) != 0) FAILF("worker sees name %s\n", c);
    if (strcmp(h, host0) != 0) FAILF("worker sees host %s\n", h);
  }
  return NULL;
}

static void* name_thread(void* a) {
  const char* want = a;
  prctl(PR_SET_NAME, want);
  int bad = 0;
  for (int i = 0; i < 20; i++) {
    park_around();
    char n[17] = {0}, c[64];
    prctl(PR_GET_NAME, n);
    comm_of_self(c, sizeof c);
    if (strcmp(n, want) != 0 || strcmp(c, want) != 0) bad++;
  }
  if (bad) FAILF("name %s lost %d times\n", want, bad);
  return (void*)(intptr_t)(bad == 0);
}

static void* pdeath_self(void* a) {
  (void)a;
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  int ok = 1;
  for (int i = 0; i < 10; i++) {
    park_around();
    int s = 0;
    prctl(PR_GET_PDEATHSIG, &s);
    if (s != SIGUSR1) ok = 0;
  }
  return (void*)(intptr_t)ok;
}

static pid_t orphan;
static void* pdeath_forker(void* a) {
  (void)a;
  int p[2];
  if (pipe(p) != 0) return NULL;
  pid_t ppid = getpid();
  orphan = fork();
  if (orphan == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != ppid) _exit(3);
    write(p[1], "x", 1);
    for (;;) pause();
  }
  char c;
  park_around();
  read(p[0], &c, 1); /* the child has its parent-death signal set */
  park_around();
  close(p[0]);
  close(p[1]);
  return NULL; /* this thread ends: the kernel signals the child */
}

static char* alt_lo;
static size_t alt_size = 256 * 1024;
static volatile int on_alt;
static void usr2(int sig) {
  (void)sig;
  char here;
  on_alt = &here >= alt_lo && &here < alt_lo + alt_size;
}
static void* altstack_thread(void* a) {
  (void)a;
  alt_lo = malloc(alt_size);
  stack_t ss = {.ss_sp = alt_lo, .ss_size = alt_size, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) return NULL;
  int ok = 1;
  for (int i = 0; i < 10; i++) {
    park_around();
    stack_t old;
    sigaltstack(NULL, &old);
    if (old.ss_sp != alt_lo || (old.ss_flags & SS_DISABLE)) ok = 0;
    on_alt = 0;
    pthread_kill(pthread_self(), SIGUSR2);
    if (!on_alt) ok = 0;
  }
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  park_around();
  return (void*)(intptr_t)ok;
}

static void* uts_thread(void* a) {
  (void)a;
  if (unshare(CLONE_NEWUTS) != 0) return (void*)(intptr_t)2;
  sethostname("mnp-wired", 9);
  int ok = 1;
  for (int i = 0; i < 10; i++) {
    park_around();
    char h[64];
    gethostname(h, sizeof h);
    if (strcmp(h, "mnp-wired") != 0) ok = 0;
  }
  return (void*)(intptr_t)ok;
}

static int run(void* (*fn)(void*), void* arg) {
  pthread_t t;
  void* r = NULL;
  pthread_create(&t, NULL, fn, arg);
  pthread_join(t, &r);
  return (int)(intptr_t)r;
}

int main(void) {
  mnp_report_shim();
  alarm(20);
  comm_of_self(proc_name, sizeof proc_name);
  gethostname(host0, sizeof host0);
  struct sigaction sa = {0};
  sa.sa_handler = usr2;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR2, &sa, NULL);
  pthread_t w[3];
  for (int i = 0; i < 3; i++) pthread_create(&w[i], NULL, worker, NULL);

  pthread_t n1, n2;
  void *r1, *r2;
  pthread_create(&n1, NULL, name_thread, "wired-one");
  pthread_create(&n2, NULL, name_thread, "wired-two");
  pthread_join(n1, &r1);
  pthread_join(n2, &r2);
  printf("name: %s\n", r1 && r2 ? "kept" : "LOST");

  printf("pdeath self: %s\n", run(pdeath_self, NULL) ? "kept" : "LOST");
  run(pdeath_forker, NULL);
  int st = 0;
  waitpid(orphan, &st, 0);
  printf("pdeath child: %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");

  printf("altstack: %s\n", run(altstack_thread, NULL) ? "kept" : "LOST");
  int u = run(uts_thread, NULL);
  printf("uts: %s\n", u == 2 ? "not permitted" : u ? "kept" : "LOST");

  stop_workers = 1;
  for (int i = 0; i < 3; i++) pthread_join(w[i], NULL);
  mnp_check("kthreads_max", kthreads_max);
  printf("%s\n", fail ? "FAIL" : "ok");
  return fail;
}
