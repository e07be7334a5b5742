/* io_poll_many — many threads each blocked in a poll-family call on several
 * fds at once: under the shim they park on the netpoller, so the kernel
 * thread count stays at MNP_PROCS + a few (natively one per thread).
 *
 * 120 threads, each with 3 pipes, wait with no timeout for any of the 3
 * read ends, with one of poll, ppoll, select, pselect, epoll_wait,
 * epoll_pwait and epoll_pwait2 (by thread number; no signal masks).  Once
 * all are waiting, main samples the kernel thread count, then writes one
 * byte to one pipe of each thread (a different one by thread, in reverse
 * thread order).  Each thread must see exactly that fd ready (revents,
 * FD_ISSET, the epoll data it registered) and nothing else.  Then every
 * thread waits again on its now empty pipes with a 40 ms timeout: the call
 * returns 0 no earlier than that, with nothing reported ready, and select
 * has written the time left (0) back into its timeval.
 *
 * stdout: one "<call> wake: ok" and "<call> timeout: ok" line per call.
 * stderr: MNP-CHECK kthreads_max (sampled while all 120 wait), and a FAIL
 * line for each thread that saw something wrong. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 120, kPipes = 3, kTimeoutMs = 40 };
enum Kind { kPoll, kPpoll, kSelect, kPselect, kEpollWait, kEpollPwait, kEpollPwait2, kKinds };
static const char* const kind_name[kKinds] = {"poll",       "ppoll",       "select",      "pselect",
                                              "epoll_wait", "epoll_pwait", "epoll_pwait2"};

struct Worker {
  int id;
  int rd[kPipes], wr[kPipes];
  int epfd;
  int wake_ok, timeout_ok;
};

static struct Worker g_workers[kThreads];
/* Sizes the compiler cannot see: with _FORTIFY_SOURCE (io_poll_many_fortify)
 * poll and read on arrays of known size then become __poll_chk and
 * __read_chk, which the shim must park as well. */
static volatile int g_one = 1;
static atomic_int g_waiting;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int expected_pipe(int id) { return (id * 2 + 1) % kPipes; }

/* Waits for any read end; timeout_ms < 0: forever.  Returns the call's result
 * and sets ready[i] for each pipe reported readable, *other when anything
 * else was reported (write sets, unknown data, extra revents bits). */
static int wait_any(struct Worker* w, int timeout_ms, int ready[kPipes], int* other, int* err) {
  enum Kind kind = (enum Kind)(w->id % kKinds);
  struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  const struct timespec* tsp = timeout_ms < 0 ? NULL : &ts;
  int rv = -1;
  memset(ready, 0, sizeof(int) * kPipes);
  *other = 0;
  switch (kind) {
    case kPoll:
    case kPpoll: {
      struct pollfd p[kPipes + 1];
      for (int i = 0; i < kPipes; i++) p[i] = (struct pollfd){w->rd[i], POLLIN, 0};
      p[kPipes] = (struct pollfd){-1, POLLIN, 0}; /* ignored, as natively */
      nfds_t n = (nfds_t)(kPipes + g_one);
      rv = kind == kPoll ? poll(p, n, timeout_ms) : ppoll(p, n, tsp, NULL);
      for (int i = 0; i < kPipes; i++) {
        if (p[i].revents == POLLIN) ready[i] = 1;
        else if (p[i].revents != 0) *other = 1;
      }
      if (p[kPipes].revents != 0) *other = 1;
      break;
    }
    case kSelect:
    case kPselect: {
      fd_set r, wset;
      FD_ZERO(&r);
      FD_ZERO(&wset);
      int nfds = 0;
      for (int i = 0; i < kPipes; i++) {
        FD_SET(w->rd[i], &r);
        if (w->rd[i] >= nfds) nfds = w->rd[i] + 1;
      }
      if (kind == kSelect) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        rv = select(nfds, &r, &wset, NULL, timeout_ms < 0 ? NULL : &tv);
        if (timeout_ms >= 0 && rv == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0)) *other = 1;
      } else {
        rv = pselect(nfds, &r, &wset, NULL, tsp, NULL);
      }
      for (int fd = 0; fd < nfds; fd++) {
        if (FD_ISSET(fd, &wset)) *other = 1;
        if (!FD_ISSET(fd, &r)) continue;
        int known = 0;
        for (int i = 0; i < kPipes; i++)
          if (w->rd[i] == fd) ready[i] = known = 1;
        if (!known) *other = 1;
      }
      break;
    }
    default: {
      struct epoll_event ev[kPipes];
      if (kind == kEpollWait) rv = epoll_wait(w->epfd, ev, kPipes, timeout_ms);
      else if (kind == kEpollPwait) rv = epoll_pwait(w->epfd, ev, kPipes, timeout_ms, NULL);
      else rv = epoll_pwait2(w->epfd, ev, kPipes, tsp, NULL);
      for (int i = 0; i < rv; i++) {
        if (ev[i].data.u32 < kPipes && ev[i].events == EPOLLIN) ready[ev[i].data.u32] = 1;
        else *other = 1;
      }
      break;
    }
  }
  *err = rv < 0 ? errno : 0;
  return rv;
}

static void* worker(void* arg) {
  struct Worker* w = arg;
  int ready[kPipes], other, err;

  atomic_fetch_add(&g_waiting, 1);
  int rv = wait_any(w, -1, ready, &other, &err);
  int want = expected_pipe(w->id);
  w->wake_ok = rv == 1 && !other;
  for (int i = 0; i < kPipes; i++)
    if (ready[i] != (i == want)) w->wake_ok = 0;
  char c = 0;
  if (w->wake_ok && (read(w->rd[want], &c, (size_t)g_one) != 1 || c != (char)('a' + w->id % 26))) w->wake_ok = 0;
  if (!w->wake_ok)
    fprintf(stderr, "FAIL %s thread %d wake: returned %d (errno %d), other=%d, byte %d\n", kind_name[w->id % kKinds],
            w->id, rv, err, other, c);

  double t0 = now_ms();
  rv = wait_any(w, kTimeoutMs, ready, &other, &err);
  double elapsed = now_ms() - t0;
  w->timeout_ok = rv == 0 && !other && elapsed >= kTimeoutMs - 1;
  for (int i = 0; i < kPipes; i++)
    if (ready[i]) w->timeout_ok = 0;
  if (!w->timeout_ok)
    fprintf(stderr, "FAIL %s thread %d timeout: returned %d (errno %d), other=%d, after %.1f ms\n",
            kind_name[w->id % kKinds], w->id, rv, err, other, elapsed);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  for (int t = 0; t < kThreads; t++) {
    struct Worker* w = &g_workers[t];
    w->id = t;
    w->epfd = -1;
    for (int i = 0; i < kPipes; i++) {
      int p[2];
      if (pipe(p) != 0) {
        perror("pipe");
        return 1;
      }
      w->rd[i] = p[0];
      w->wr[i] = p[1];
    }
    if (t % kKinds >= kEpollWait) {
      w->epfd = epoll_create1(EPOLL_CLOEXEC);
      if (w->epfd < 0) {
        perror("epoll_create1");
        return 1;
      }
      for (int i = 0; i < kPipes; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->rd[i], &ev) != 0) {
          perror("epoll_ctl");
          return 1;
        }
      }
    }
  }
  pthread_t tids[kThreads];
  for (int t = 0; t < kThreads; t++) {
    if (pthread_create(&tids[t], NULL, worker, &g_workers[t]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  while (atomic_load(&g_waiting) < kThreads) usleep(1000);
  usleep(200 * 1000); /* all of them inside their call by now */
  mnp_check("kthreads_max", mnp_kernel_threads());
  for (int t = kThreads - 1; t >= 0; t--) {
    char c = (char)('a' + t % 26);
    if (write(g_workers[t].wr[expected_pipe(t)], &c, 1) != 1) {
      perror("write");
      return 1;
    }
  }
  for (int t = 0; t < kThreads; t++) pthread_join(tids[t], NULL);

  int failures = 0;
  for (int k = 0; k < kKinds; k++) {
    int wake = 1, timeout = 1;
    for (int t = k; t < kThreads; t += kKinds) {
      wake &= g_workers[t].wake_ok;
      timeout &= g_workers[t].timeout_ok;
    }
    printf("%s wake: %s\n", kind_name[k], wake ? "ok" : "not ok");
    printf("%s timeout: %s\n", kind_name[k], timeout ? "ok" : "not ok");
    failures += !wake + !timeout;
  }
  return failures ? 1 : 0;
}
