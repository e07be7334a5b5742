/* io_pselect_mask — a signal blocked everywhere but unblocked by the mask
 * of pselect/ppoll/epoll_pwait reaches the waiting thread.
 *
 * Interleaving this reproduces (GNU make -j): the program blocks SIGCHLD in
 * every thread and waits in pselect with its old mask, in which SIGCHLD is
 * open; a child exits. Natively the kernel delivers SIGCHLD to the
 * pselect-ing thread: the handler runs and pselect fails with EINTR. Under
 * the shim the G's mask stayed the blocked one, so every kernel thread
 * blocked SIGCHLD, it stayed pending for the process, and make waited for
 * ever. Cases, each with SIGCHLD blocked and a child that exits after
 * 50 ms (a) or before the call (b, c, d: already pending when the mask
 * takes effect):
 *   (a) pselect on an idle pipe, mask without SIGCHLD: EINTR, handler ran;
 *   (b) the same with SIGCHLD pending before the call;
 *   (c) ppoll, pending;  (d) epoll_pwait, pending;
 * and after each, SIGCHLD is blocked again (sigprocmask reads it back).
 * A second thread stays alive throughout (so the waiter is a G among
 * several). stdout: one line per case. alarm(20) ends a hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int g_handled;
static atomic_int g_stop;
static int g_pipe[2];

static void on_chld(int s) {
  (void)s;
  atomic_fetch_add(&g_handled, 1);
}

static void* idler(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) usleep(2000);
  return NULL;
}

static void spawn(int delay_us) {
  pid_t p = fork();
  if (p == 0) {
    if (delay_us) usleep(delay_us);
    _exit(0);
  }
  if (!delay_us) { /* wait until it is a zombie: SIGCHLD pending now */
    siginfo_t si;
    waitid(P_PID, p, &si, WEXITED | WNOWAIT);
  }
}

static void reap(void) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void report(const char* what, int rv, int err, int before) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  printf("%s: %s, handler ran %s, SIGCHLD blocked after: %s\n", what, rv == -1 && err == EINTR ? "EINTR" : "not EINTR",
         atomic_load(&g_handled) == before + 1 ? "once" : "not once", sigismember(&now, SIGCHLD) ? "yes" : "no");
  if (!(rv == -1 && err == EINTR)) fprintf(stderr, "%s: rv %d errno %d\n", what, rv, err);
}

int main(void) {
  mnp_report_shim();
  alarm(20);
  struct sigaction sa = {0};
  sa.sa_handler = on_chld;
  sigaction(SIGCHLD, &sa, NULL);
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old); /* inherited by the idler */
  if (pipe(g_pipe) != 0) return 2;
  pthread_t t;
  pthread_create(&t, NULL, idler, NULL);

  for (int k = 0; k < 4; k++) {
    int before = atomic_load(&g_handled);
    spawn(k == 0 ? 50000 : 0);
    int rv, err;
    if (k <= 1) {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(g_pipe[0], &r);
      rv = pselect(g_pipe[0] + 1, &r, NULL, NULL, NULL, &old);
      err = errno;
      report(k == 0 ? "pselect, child exits while waiting" : "pselect, SIGCHLD already pending", rv, err, before);
    } else if (k == 2) {
      struct pollfd p = {g_pipe[0], POLLIN, 0};
      rv = ppoll(&p, 1, NULL, &old);
      err = errno;
      report("ppoll, SIGCHLD already pending", rv, err, before);
    } else {
      int ep = epoll_create1(0);
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = g_pipe[0]};
      epoll_ctl(ep, EPOLL_CTL_ADD, g_pipe[0], &ev);
      rv = epoll_pwait(ep, &ev, 1, -1, &old);
      err = errno;
      close(ep);
      report("epoll_pwait, SIGCHLD already pending", rv, err, before);
    }
    reap();
  }
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  return 0;
}
