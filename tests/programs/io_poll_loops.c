/* io_poll_loops — several threads, each an event loop blocked in its own
 * epoll_wait, poll or select, as in memcached, unbound or haproxy: each
 * wakes for its own fd and for a signal sent to it, and the signal's
 * handler runs on the thread whose wait it ends.
 *
 * Under the shim each loop is a G parked on the netpoller, or, when it is
 * the process's only G, in the real call (the direct path,
 * docs/ARCHITECTURE.md "Blocking calls"); either way a signal must end its
 * wait with EINTR after the handler ran on it, and only a write to its own
 * pipe may wake it. A direct path for every loop whose P has nothing else
 * to run was tried (branch l-direct2): this program caught a kick of the
 * runtime that ended a loop's epoll_wait with an EINTR no handler caused.
 * Rounds: 4 loops (2 epoll_wait, 1 poll, 1 select), each with its own pipe.
 *   (1) a byte on each loop's pipe, in turn: that loop, and only it, wakes
 *       and reads it (200 rounds);
 *   (2) pthread_kill(SIGUSR1) to each loop, in turn, once it is waiting:
 *       its wait ends with EINTR and the handler ran on that thread first
 *       (the handler has no SA_RESTART; 20 rounds);
 *   (3) a kill(getpid(), SIGUSR2) that only loop 0 lets in (the others
 *       block it): loop 0's wait ends with EINTR after the handler ran on
 *       it (20 rounds).
 * stdout: fixed lines. alarm(30) ends a hang (a failure). */
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
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kLoops = 4, kByteRounds = 200, kSigRounds = 20 };

struct Loop {
  int idx;
  int pipe[2];
  int ep;
  pthread_t th;
  atomic_int waiting;   /* 1 while inside its wait call */
  atomic_int bytes;     /* bytes it read */
  atomic_int eintr_ok;  /* EINTRs that came after its own handler ran */
  atomic_int eintr_bad; /* EINTRs with no handler run on it first */
  atomic_int woke_bad;  /* wakes with nothing for it */
};
static struct Loop g_loops[kLoops];
static atomic_int g_stop;
static __thread int t_handled; /* handlers run on this thread */
static atomic_int g_handled_total;

static void on_sig(int sig) {
  (void)sig;
  t_handled++;
  atomic_fetch_add(&g_handled_total, 1);
}

static int wait_once(struct Loop* l) {
  switch (l->idx) {
    case 0:
    case 1: {
      struct epoll_event ev;
      return epoll_wait(l->ep, &ev, 1, 20000);
    }
    case 2: {
      struct pollfd p = {l->pipe[0], POLLIN, 0};
      return poll(&p, 1, 20000);
    }
    default: {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(l->pipe[0], &r);
      struct timeval tv = {20, 0};
      return select(l->pipe[0] + 1, &r, NULL, NULL, &tv);
    }
  }
}

static void* loop_main(void* arg) {
  struct Loop* l = arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(l->idx == 0 ? SIG_UNBLOCK : SIG_BLOCK, &s, NULL);
  while (!atomic_load(&g_stop)) {
    int before = t_handled;
    atomic_store(&l->waiting, 1);
    int r = wait_once(l);
    atomic_store(&l->waiting, 0);
    if (r < 0 && errno == EINTR) {
      if (t_handled > before) atomic_fetch_add(&l->eintr_ok, 1);
      else atomic_fetch_add(&l->eintr_bad, 1);
      continue;
    }
    if (r <= 0) {
      atomic_fetch_add(&l->woke_bad, 1);
      continue;
    }
    char c;
    if (read(l->pipe[0], &c, 1) == 1) {
      if (c == 'q') break;
      atomic_fetch_add(&l->bytes, 1);
    } else {
      atomic_fetch_add(&l->woke_bad, 1);
    }
  }
  return NULL;
}

/* Until loop l is inside its wait (and a little longer, so that it is
 * really in the call, not on its way in). */
static void until_waiting(struct Loop* l) {
  while (!atomic_load(&l->waiting)) usleep(100);
  usleep(2000);
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig; /* no SA_RESTART */
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, NULL); /* main never takes SIGUSR2 */
  for (int i = 0; i < kLoops; i++) {
    struct Loop* l = &g_loops[i];
    l->idx = i;
    if (pipe(l->pipe) != 0) return 3;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->pipe[0]};
    if (l->ep < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->pipe[0], &ev) != 0) return 3;
    pthread_create(&l->th, NULL, loop_main, l);
  }
  /* (1) bytes, one loop at a time. */
  int bytes_ok = 1;
  for (int r = 0; r < kByteRounds; r++) {
    struct Loop* l = &g_loops[r % kLoops];
    int want = atomic_load(&l->bytes) + 1;
    if (write(l->pipe[1], "b", 1) != 1) return 3;
    while (atomic_load(&l->bytes) < want) usleep(50);
  }
  for (int i = 0; i < kLoops; i++)
    if (atomic_load(&g_loops[i].bytes) != kByteRounds / kLoops) bytes_ok = 0;
  printf("bytes: each loop read its own %s\n", bytes_ok ? "yes" : "NO");
  /* (2) a signal to each loop's thread. */
  for (int r = 0; r < kSigRounds; r++) {
    struct Loop* l = &g_loops[r % kLoops];
    int want = atomic_load(&l->eintr_ok) + atomic_load(&l->eintr_bad) + 1;
    until_waiting(l);
    pthread_kill(l->th, SIGUSR1);
    while (atomic_load(&l->eintr_ok) + atomic_load(&l->eintr_bad) < want) usleep(50);
  }
  /* (3) to the process; only loop 0 lets SIGUSR2 in. */
  for (int r = 0; r < kSigRounds; r++) {
    struct Loop* l = &g_loops[0];
    int want = atomic_load(&l->eintr_ok) + atomic_load(&l->eintr_bad) + 1;
    until_waiting(l);
    kill(getpid(), SIGUSR2);
    while (atomic_load(&l->eintr_ok) + atomic_load(&l->eintr_bad) < want) usleep(50);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kLoops; i++) {
    if (write(g_loops[i].pipe[1], "q", 1) != 1) return 3;
    pthread_join(g_loops[i].th, NULL);
  }
  int ok = 0, bad = 0, woke = 0;
  for (int i = 0; i < kLoops; i++) {
    ok += atomic_load(&g_loops[i].eintr_ok);
    bad += atomic_load(&g_loops[i].eintr_bad);
    woke += atomic_load(&g_loops[i].woke_bad);
    fprintf(stderr, "loop %d: bytes %d eintr after handler %d, without %d, empty wakes %d\n", i,
            atomic_load(&g_loops[i].bytes), atomic_load(&g_loops[i].eintr_ok), atomic_load(&g_loops[i].eintr_bad),
            atomic_load(&g_loops[i].woke_bad));
  }
  printf("signals: %d of %d waits ended with EINTR after their own handler\n", ok, 2 * kSigRounds);
  printf("EINTR without a handler: %d, empty wakes: %d, handlers run: %d\n", bad, woke, atomic_load(&g_handled_total));
  return 0;
}
