/* io_poll_timeouts — poll, select, epoll_wait, ppoll, pselect and
 * epoll_pwait with timeouts, called from threads.
 *
 *   (a) nothing ready: each call returns 0, no earlier than its 30 ms
 *       timeout (elapsed >= timeout - 1 ms); timeout 0 returns 0 at once;
 *   (b) a pipe becomes readable from another thread after 20 ms: each call
 *       (5 s timeout, or none) returns 1 with POLLIN / FD_ISSET / EPOLLIN
 *       and the epoll data the program registered;
 *   (c) 12 threads poll concurrently on their own pipes (poll, select and
 *       epoll_wait in turn); main writes to the even ones, in reverse order,
 *       2 ms apart; the odd ones must time out after 100 ms;
 *   (d) ppoll, pselect and epoll_pwait with timeouts and a signal mask,
 *       both ways as in (a) and (b).
 * stdout has one "name: ok" line per check (times are never printed).
 *
 * Failure: "name: not ok" with a FAIL line on stderr giving the return
 * value, errno and elapsed time, exit 1.  Under the shim a call that holds
 * its P while it blocks starves the writer thread at MNP_PROCS=1: the
 * readable case then times out (returns 0 after 5 s) instead of returning 1;
 * a stray EINTR from the runtime's signals also shows here. */
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

enum { kTimeoutMs = 30, kReadyAfterMs = 20, kLongMs = 5000, kConcurrent = 12, kIdleMs = 100 };

enum Kind { kPoll, kSelect, kEpoll, kPpoll, kPselect, kEpollPwait, kKinds };
static const char* const kind_name[kKinds] = {"poll", "select", "epoll_wait", "ppoll", "pselect", "epoll_pwait"};

static int g_failures;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void report(const char* name, int ok, int rv, int err, double elapsed) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  if (!ok) {
    fprintf(stderr, "FAIL %s: returned %d (errno %s), after %.1f ms\n", name, rv, err ? strerror(err) : "0", elapsed);
    g_failures++;
  }
}

/* Waits for fd to become readable with one of the six calls; timeout_ms < 0
 * means no timeout.  Returns the call's result; *ready is set when the result
 * says exactly "fd readable" (revents/FD_ISSET/epoll event and data). */
static int wait_readable(enum Kind kind, int fd, int timeout_ms, int* ready, int* err) {
  *ready = 0;
  int rv = -1;
  struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000L};
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  switch (kind) {
    case kPoll:
    case kPpoll: {
      struct pollfd p = {fd, POLLIN, 0};
      rv = kind == kPoll ? poll(&p, 1, timeout_ms) : ppoll(&p, 1, timeout_ms < 0 ? NULL : &ts, &mask);
      *err = errno;
      *ready = rv == 1 && p.revents == POLLIN;
      break;
    }
    case kSelect:
    case kPselect: {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(fd, &set);
      rv = kind == kSelect ? select(fd + 1, &set, NULL, NULL, timeout_ms < 0 ? NULL : &tv)
                           : pselect(fd + 1, &set, NULL, NULL, timeout_ms < 0 ? NULL : &ts, &mask);
      *err = errno;
      *ready = rv == 1 && FD_ISSET(fd, &set);
      break;
    }
    case kEpoll:
    case kEpollPwait: {
      int ep = epoll_create1(EPOLL_CLOEXEC);
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234500000000ull + (unsigned)fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      struct epoll_event out[4];
      memset(out, 0, sizeof out);
      rv = kind == kEpoll ? epoll_wait(ep, out, 4, timeout_ms) : epoll_pwait(ep, out, 4, timeout_ms, &mask);
      *err = errno;
      *ready = rv == 1 && out[0].events == EPOLLIN && out[0].data.u64 == 0x1234500000000ull + (unsigned)fd;
      close(ep);
      break;
    }
    default:
      break;
  }
  return rv;
}

struct Job {
  enum Kind kind;
  int fd;
  int timeout_ms;
  int expect_ready; /* 1: expect readable; 0: expect a timeout */
  double min_ms;    /* earliest acceptable return */
  char name[64];
  int ok, rv, err; /* results, reported by main in a fixed order */
  double elapsed;
  double returned_at; /* now_ms() when the call returned */
};

static double g_written_at; /* now_ms() just before delayed_write's write */

static void* run_job(void* arg) {
  struct Job* j = arg;
  int ready, err;
  double t0 = now_ms();
  int rv = wait_readable(j->kind, j->fd, j->timeout_ms, &ready, &err);
  j->returned_at = now_ms();
  double el = j->returned_at - t0;
  int ok = j->expect_ready ? (ready && el >= j->min_ms) : (rv == 0 && el >= j->min_ms);
  if (ok && j->expect_ready) {
    char c;
    ok = read(j->fd, &c, 1) == 1 && c == 'x';
  }
  j->ok = ok;
  j->rv = rv;
  j->err = rv < 0 ? err : 0;
  j->elapsed = el;
  return NULL;
}

static void* delayed_write(void* arg) {
  usleep(kReadyAfterMs * 1000);
  g_written_at = now_ms();
  if (write(*(int*)arg, "x", 1) != 1) fprintf(stderr, "FAIL delayed write: %s\n", strerror(errno));
  return NULL;
}

/* One check in a thread of its own; a second thread writes after 20 ms when
 * the check expects the fd to become readable. */
static void one(enum Kind kind, int timeout_ms, int make_ready, const char* what) {
  int p[2];
  if (pipe(p) != 0) {
    perror("pipe");
    g_failures++;
    return;
  }
  struct Job j = {kind, p[0], timeout_ms, make_ready, make_ready ? 0 : (timeout_ms > 0 ? timeout_ms - 1 : 0), "", 0,
                  0,    0,    0,          0};
  snprintf(j.name, sizeof j.name, "%s %s", kind_name[kind], what);
  pthread_t t, w;
  pthread_create(&t, NULL, run_job, &j);
  if (make_ready) pthread_create(&w, NULL, delayed_write, &p[1]);
  pthread_join(t, NULL);
  if (make_ready) {
    pthread_join(w, NULL);
    /* Readable only once written: a return before the write is wrong. */
    if (j.ok && j.returned_at < g_written_at) j.ok = 0;
  }
  report(j.name, j.ok, j.rv, j.err, j.elapsed);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  mnp_report_shim();

  /* (a) and (d): timeouts with nothing ready. */
  for (int k = 0; k < kKinds; k++) one((enum Kind)k, kTimeoutMs, 0, "30 ms timeout, nothing ready");
  for (int k = 0; k < kKinds; k++) one((enum Kind)k, 0, 0, "zero timeout, nothing ready");
  /* (b) and (d): readable after 20 ms, with a long timeout and with none. */
  for (int k = 0; k < kKinds; k++) one((enum Kind)k, kLongMs, 1, "readable after 20 ms, 5 s timeout");
  for (int k = 0; k < kKinds; k++) one((enum Kind)k, -1, 1, "readable after 20 ms, no timeout");

  /* (c) concurrent waiters on different pipes. */
  int pipes[kConcurrent][2];
  struct Job jobs[kConcurrent];
  pthread_t th[kConcurrent];
  for (int i = 0; i < kConcurrent; i++) {
    if (pipe(pipes[i]) != 0) {
      perror("pipe");
      return 1;
    }
    int written = i % 2 == 0;
    jobs[i] = (struct Job){(enum Kind)(i / 2 % 3),
                           pipes[i][0],
                           written ? kLongMs : kIdleMs,
                           written,
                           written ? 0 : kIdleMs - 1,
                           "",
                           0,
                           0,
                           0,
                           0,
                           0};
    snprintf(jobs[i].name, sizeof jobs[i].name, "concurrent %d %s %s", i, kind_name[jobs[i].kind],
             written ? "readable" : "timeout");
    pthread_create(&th[i], NULL, run_job, &jobs[i]);
  }
  usleep(kReadyAfterMs * 1000);
  for (int i = kConcurrent - 2; i >= 0; i -= 2) {
    if (write(pipes[i][1], "x", 1) != 1) fprintf(stderr, "FAIL write: %s\n", strerror(errno));
    usleep(2000);
  }
  for (int i = 0; i < kConcurrent; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < kConcurrent; i++) report(jobs[i].name, jobs[i].ok, jobs[i].rv, jobs[i].err, jobs[i].elapsed);
  for (int i = 0; i < kConcurrent; i++) {
    close(pipes[i][0]);
    close(pipes[i][1]);
  }

  printf("failures: %d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
