/* wire_ptrace.c — a thread traces a child process while it parks between
 * ptrace requests and other threads keep the scheduler busy.
 *
 * ptrace requests must come from the kernel thread that is the tracer.
 * Under the shim a thread that parks (poll on a pipe, usleep, waitpid) may
 * resume on another kernel thread; before wiring, its next request failed
 * with ESRCH (gdb: "Couldn't get registers", strace -f hung). Scenarios:
 *   traceme  the tracer thread forks a child that does PTRACE_TRACEME and
 *            stops itself; the tracer (the forking kernel thread) reads
 *            its registers (GETREGS, PEEKUSER) and continues it three
 *            times, parking between every two requests;
 *   seize    main forks a child; another thread seizes it, interrupts it,
 *            reads its registers and continues it, parking in between,
 *            then detaches;
 *   attach   as seize with PTRACE_ATTACH and the SIGSTOP it sends.
 * Meanwhile three worker threads sleep in short naps, one of them also in
 * sigtimedwait (a call that hands the P off at once, so the Gs move
 * between kernel threads). Stdout: the stops the tracer saw and the exit statuses; the
 * kernel thread peak goes to the runner (bounded under the shim: the
 * tracer's wiring costs one kernel thread). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile int stop_workers;
static long long kthreads_max;
static int fail;

static void note_kthreads(void) {
  long long k = mnp_kernel_threads();
  if (k > kthreads_max) kthreads_max = k;
}

#define CHECK(c, what)                                                          \
  do {                                                                          \
    if (!(c)) {                                                                 \
      fprintf(stderr, "FAIL %s: %s (errno %s)\n", mode, what, strerror(errno)); \
      fail = 1;                                                                 \
    }                                                                           \
  } while (0)

static void* worker(void* arg) {
  int handoff = arg != NULL;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  struct timespec ts = {0, 1000 * 1000};
  while (!stop_workers) {
    if (handoff) sigtimedwait(&set, NULL, &ts);
    usleep(500);
    note_kthreads();
  }
  return NULL;
}

/* Parks the calling thread three ways: poll on a pipe nobody writes, a
 * sleep, and a wait for a thread that sleeps a little. */
static void* nap(void* a) {
  usleep(1000);
  return a;
}
static void park_around(void) {
  int p[2];
  if (pipe(p) == 0) {
    struct pollfd pf = {p[0], POLLIN, 0};
    poll(&pf, 1, 3);
    close(p[0]);
    close(p[1]);
  }
  usleep(2000);
  pthread_t t;
  if (pthread_create(&t, NULL, nap, NULL) == 0) pthread_join(t, NULL);
  note_kthreads();
}

/* Reads the registers twice over, after parks. */
static int regs_ok(const char* mode, pid_t pid) {
  struct user_regs_struct r;
  park_around();
  errno = 0;
  long g = ptrace(PTRACE_GETREGS, pid, NULL, &r);
  CHECK(g == 0, "PTRACE_GETREGS");
  park_around();
  errno = 0;
  long rip = ptrace(PTRACE_PEEKUSER, pid, (void*)offsetof(struct user_regs_struct, rip), NULL);
  CHECK(errno == 0, "PTRACE_PEEKUSER");
  return g == 0 && errno == 0 && (unsigned long)rip == r.rip;
}

static void run_traceme(void) {
  const char* mode = "traceme";
  pid_t pid = fork();
  if (pid == 0) {
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(100);
    raise(SIGSTOP);
    for (int i = 0; i < 3; i++) raise(SIGUSR1);
    _exit(7);
  }
  CHECK(pid > 0, "fork");
  if (pid <= 0) return;
  int stops = 0, st = 0;
  for (;;) {
    park_around();
    if (waitpid(pid, &st, 0) != pid) {
      CHECK(0, "waitpid");
      break;
    }
    if (!WIFSTOPPED(st)) break;
    int sig = WSTOPSIG(st);
    if (sig != SIGSTOP && sig != SIGUSR1) { /* the child's own (its runtime's) */
      ptrace(PTRACE_CONT, pid, NULL, (void*)(long)sig);
      continue;
    }
    stops++;
    CHECK(regs_ok(mode, pid), "registers after parks");
    park_around();
    long c = ptrace(PTRACE_CONT, pid, NULL, NULL); /* SIGSTOP, SIGUSR1 suppressed */
    CHECK(c == 0, "PTRACE_CONT");
    if (c != 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
  }
  printf("traceme: %d stops, exit %d\n", stops, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

static pid_t victim;

/* Waits for the stop the tracer caused (the SIGSTOP of ATTACH or kill, the
 * event stop of INTERRUPT); signal stops of the child's own go on to it. */
static int wait_our_stop(pid_t pid, int attach, int* st) {
  for (;;) {
    if (waitpid(pid, st, __WALL) != pid || !WIFSTOPPED(*st)) return 0;
    int sig = WSTOPSIG(*st);
    if (attach ? sig == SIGSTOP : (*st >> 16) == PTRACE_EVENT_STOP) return 1;
    if (ptrace(PTRACE_CONT, pid, NULL, (void*)(long)sig) != 0) return 0;
  }
}

static void* tracer(void* arg) {
  int attach = arg != NULL;
  const char* mode = attach ? "attach" : "seize";
  int st = 0, stops = 0;
  long r = attach ? ptrace(PTRACE_ATTACH, victim, NULL, NULL) : ptrace(PTRACE_SEIZE, victim, NULL, NULL);
  CHECK(r == 0, "attach/seize");
  if (r != 0) return NULL;
  for (int round = 0; round < 3; round++) {
    park_around();
    if (attach && round > 0) kill(victim, SIGSTOP);
    if (!attach) CHECK(ptrace(PTRACE_INTERRUPT, victim, NULL, NULL) == 0, "PTRACE_INTERRUPT");
    park_around();
    if (!wait_our_stop(victim, attach, &st)) {
      CHECK(0, "waitpid for the stop");
      return NULL;
    }
    stops++;
    CHECK(regs_ok(mode, victim), "registers after parks");
    park_around();
    if (round < 2) CHECK(ptrace(PTRACE_CONT, victim, NULL, NULL) == 0, "PTRACE_CONT");
  }
  park_around();
  CHECK(ptrace(PTRACE_DETACH, victim, NULL, NULL) == 0, "PTRACE_DETACH");
  printf("%s: %d stops, detached\n", mode, stops);
  return NULL;
}

static void run_attach(int attach) {
  victim = fork();
  if (victim == 0) {
    for (;;) usleep(1000);
  }
  if (victim < 0) {
    perror("fork");
    fail = 1;
    return;
  }
  pthread_t t;
  pthread_create(&t, NULL, tracer, attach ? (void*)1 : NULL);
  pthread_join(t, NULL);
  kill(victim, SIGKILL);
  int st = 0;
  waitpid(victim, &st, 0);
  printf("%s: child %s\n", attach ? "attach" : "seize", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed" : "?");
}

static void* traceme_thread(void* a) {
  run_traceme();
  return a;
}

int main(void) {
  mnp_report_shim();
  alarm(20); /* a lost tracee hangs the tracer: end with SIGALRM */
  signal(SIGUSR2, SIG_IGN);
  pthread_t w[3];
  for (int i = 0; i < 3; i++) pthread_create(&w[i], NULL, worker, i == 0 ? (void*)1 : NULL);
  pthread_t t;
  pthread_create(&t, NULL, traceme_thread, NULL);
  pthread_join(t, NULL);
  fflush(stdout);
  run_attach(0);
  fflush(stdout);
  run_attach(1);
  stop_workers = 1;
  for (int i = 0; i < 3; i++) pthread_join(w[i], NULL);
  mnp_check("kthreads_max", kthreads_max);
  printf("%s\n", fail ? "FAIL" : "ok");
  return fail;
}
