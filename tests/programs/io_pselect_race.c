/* io_pselect_race — a signal that arrives while a thread is entering
 * pselect/ppoll/epoll_pwait/sigsuspend with a mask that unblocks it ends
 * that call with EINTR, however close to the entry it lands.
 *
 * Interleaving this reproduces: the signal is blocked in every thread and
 * let in only by the call's own mask. Natively the mask and the wait are
 * one system call: the signal is either pending when the call starts or
 * arrives during it, and either way its handler runs and the call fails
 * with EINTR. Under the shim the G's mask became the call's mask before
 * the G parked (or, for sigsuspend, before its system call): a signal the
 * kernel delivered to the G's own M in between ran its handler on the G,
 * and the G then waited for good — io_pselect_mask hung about one run in
 * 300 under load. Two sources of the signal, both process-directed:
 *   (1) a one-shot POSIX timer (SIGUSR1), armed just before each call to
 *       fire 0 to 60 us later (another delay each call), so that it lands
 *       at every point of the call's entry in turn: 500 calls of each kind
 *       (a periodic timer would hide a lost signal: the next tick ends the
 *       wait). A child stays alive meanwhile: a fork wires the forking G
 *       to its M until it reaps the child, so the main G runs on the
 *       initial thread, which the kernel prefers for a process-directed
 *       signal — the signal then lands on the waiting G's own M, not on
 *       an idle one;
 *   (2) a child that exits after a short spin (SIGCHLD; 0 to ~150 us,
 *       another length each cycle), as in GNU make: 10 cycles of each.
 * Each call waits on an idle pipe with no timeout; a second thread sleeps
 * in usleep throughout. stdout: one line per call and source. alarm(20)
 * ends a hang (a failure). argv[1]: a multiplier of the cycle counts, for
 * longer runs by hand. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kTimerCycles = 2000, kForkCycles = 40, kCalls = 4 };

static atomic_int g_handled;
static atomic_int g_stop;
static int g_pipe[2];
static int g_ep;

static void on_signal(int s) {
  (void)s;
  atomic_fetch_add(&g_handled, 1);
}

static void* idler(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) usleep(2000);
  return NULL;
}

static void spin_us(long us) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static const char* const kNames[kCalls] = {"pselect", "ppoll", "epoll_pwait", "sigsuspend"};

/* One call of kind `call` with mask `open`: 1 if it failed with EINTR after
 * the handler ran once and `sig` is blocked again afterwards. */
static int one_call(int call, const sigset_t* open, int sig) {
  int before = atomic_load(&g_handled);
  int rv;
  if (call == 0) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(g_pipe[0], &r);
    rv = pselect(g_pipe[0] + 1, &r, NULL, NULL, NULL, open);
  } else if (call == 1) {
    struct pollfd pf = {g_pipe[0], POLLIN, 0};
    rv = ppoll(&pf, 1, NULL, open);
  } else if (call == 2) {
    struct epoll_event ev;
    rv = epoll_pwait(g_ep, &ev, 1, -1, open);
  } else {
    rv = sigsuspend(open);
  }
  int err = errno;
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  int ok = rv == -1 && err == EINTR && atomic_load(&g_handled) == before + 1 && sigismember(&now, sig);
  if (!ok)
    fprintf(stderr, "%s (signal %d): rv %d errno %d handled %d before %d\n", kNames[call], sig, rv, err,
            atomic_load(&g_handled), before);
  return ok;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  alarm(20);
  int mult = argc > 1 ? atoi(argv[1]) : 1;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t both, old;
  sigemptyset(&both);
  sigaddset(&both, SIGCHLD);
  sigaddset(&both, SIGUSR1);
  sigprocmask(SIG_BLOCK, &both, &old); /* inherited by the idler */
  if (pipe(g_pipe) != 0) return 2;
  g_ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = g_pipe[0]};
  epoll_ctl(g_ep, EPOLL_CTL_ADD, g_pipe[0], &ev);
  pthread_t t;
  pthread_create(&t, NULL, idler, NULL);

  /* (1) The timer: each call's mask opens SIGUSR1 only. */
  int ctl[2];
  if (pipe(ctl) != 0) return 2;
  pid_t keeper = fork();
  if (keeper < 0) return 4;
  if (keeper == 0) {
    char c;
    close(ctl[1]);
    while (read(ctl[0], &c, 1) != 0) {
    }
    _exit(0);
  }
  close(ctl[0]);
  sigset_t usr1_open = old;
  sigaddset(&usr1_open, SIGCHLD);
  sigdelset(&usr1_open, SIGUSR1);
  struct sigevent se = {0};
  se.sigev_notify = SIGEV_SIGNAL;
  se.sigev_signo = SIGUSR1;
  timer_t tm;
  if (timer_create(CLOCK_MONOTONIC, &se, &tm) != 0) return 3;
  int good[kCalls] = {0};
  for (int i = 0; i < kTimerCycles * mult; i++) {
    struct itimerspec its = {{0, 0}, {0, 1000 + (i * 7) % 61 * 1000}};
    timer_settime(tm, 0, &its, NULL);
    good[i % kCalls] += one_call(i % kCalls, &usr1_open, SIGUSR1);
  }
  timer_delete(tm);
  close(ctl[1]);
  if (waitpid(keeper, NULL, 0) != keeper) return 5;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&chld, NULL, &zero) > 0) { /* the keeper's, blocked */
  }
  for (int c = 0; c < kCalls; c++)
    printf("timer, %s: %d of %d calls EINTR after the handler\n", kNames[c], good[c], kTimerCycles * mult / kCalls);

  /* (2) Children: each call's mask opens SIGCHLD only. */
  sigset_t chld_open = old;
  sigaddset(&chld_open, SIGUSR1);
  sigdelset(&chld_open, SIGCHLD);
  for (int c = 0; c < kCalls; c++) good[c] = 0;
  for (int i = 0; i < kForkCycles * mult; i++) {
    pid_t p = fork();
    if (p < 0) return 4;
    if (p == 0) {
      spin_us((i * 37) % 151);
      _exit(0);
    }
    good[i % kCalls] += one_call(i % kCalls, &chld_open, SIGCHLD);
    if (waitpid(p, NULL, 0) != p) return 5;
  }
  for (int c = 0; c < kCalls; c++)
    printf("child exit, %s: %d of %d calls EINTR after the handler\n", kNames[c], good[c], kForkCycles * mult / kCalls);
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  return 0;
}
