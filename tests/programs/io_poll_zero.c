/* io_poll_zero — a poll-family call with a zero timeout fails only for a
 * handler of the program's, as natively.
 *
 * Eight threads call poll, ppoll, select, pselect, epoll_wait and
 * epoll_pwait with a zero timeout on a pipe nothing is written to, in
 * turn, for one second, while two threads compute without a scheduling
 * point. Under the shim the computing threads' slices end by the runtime's
 * signal, which the kernel delivers to whichever kernel thread runs them
 * next, often one in a zero-timeout call: the kernel does not restart the
 * poll family after a handler, and the call failed with EINTR (a tester's
 * program: 3-63 failures in 6 s at 1 P; natively none). No handler of the
 * program's is installed, so natively every call returns 0.
 * stdout: the number of calls that did not return 0 (0), and that calls
 * were made. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kPollers = 8, kHogs = 2 };

static int g_pipe[2];
static int g_epfd;
static atomic_int g_stop;
static atomic_long g_calls;
static atomic_long g_failed;
static atomic_int g_first_errno;

static void* hog(void* arg) {
  (void)arg;
  volatile unsigned long x = 0;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) x++;
  return NULL;
}

/* One zero-timeout call of kind k on the idle pipe: its result. */
static int call(int k) {
  struct pollfd pf = {g_pipe[0], POLLIN, 0};
  struct timespec ts0 = {0, 0};
  struct timeval tv0 = {0, 0};
  struct epoll_event ev;
  sigset_t none;
  sigemptyset(&none);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(g_pipe[0], &rs);
  switch (k) {
    case 0:
      return poll(&pf, 1, 0);
    case 1:
      return ppoll(&pf, 1, &ts0, NULL);
    case 2:
      return select(g_pipe[0] + 1, &rs, NULL, NULL, &tv0);
    case 3:
      return pselect(g_pipe[0] + 1, &rs, NULL, NULL, &ts0, &none);
    case 4:
      return epoll_wait(g_epfd, &ev, 1, 0);
    default:
      return epoll_pwait(g_epfd, &ev, 1, 0, &none);
  }
}

static void* poller(void* arg) {
  int k = (int)(long)arg;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    k = (k + 1) % 6;
    errno = 0;
    int r = call(k);
    atomic_fetch_add(&g_calls, 1);
    if (r != 0) {
      int expected = 0;
      atomic_compare_exchange_strong(&g_first_errno, &expected, r < 0 ? errno : -1);
      atomic_fetch_add(&g_failed, 1);
    }
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  if (pipe(g_pipe) != 0) return 2;
  g_epfd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = g_pipe[0]}};
  if (g_epfd < 0 || epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_pipe[0], &ev) != 0) return 2;
  pthread_t hogs[kHogs], pollers[kPollers];
  for (int i = 0; i < kHogs; i++) pthread_create(&hogs[i], NULL, hog, NULL);
  for (int i = 0; i < kPollers; i++) pthread_create(&pollers[i], NULL, poller, (void*)(long)i);
  sleep(1);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kPollers; i++) pthread_join(pollers[i], NULL);
  for (int i = 0; i < kHogs; i++) pthread_join(hogs[i], NULL);
  mnp_check("calls", atomic_load(&g_calls));
  mnp_check("first_errno", atomic_load(&g_first_errno));
  printf("zero-timeout calls that did not return 0: %ld\n", atomic_load(&g_failed));
  printf("calls made: %s\n", atomic_load(&g_calls) > 1000 ? "many" : "few");
  return 0;
}
