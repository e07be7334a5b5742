/* io_signal_eintr — a handler that runs while a thread is blocked in poll,
 * select, epoll_wait or read makes the call fail with EINTR, as natively
 * (event loops leave on SIGINT/SIGTERM this way).
 *
 *   (a) main blocks in poll, select, epoll_wait (5 s timeouts) and read on
 *       an empty pipe; SIGALRM (setitimer, 50 ms, handler without
 *       SA_RESTART) arrives: each returns -1/EINTR well before 5 s and the
 *       handler ran;
 *   (b) read with an SA_RESTART handler is restarted: it returns the byte
 *       a helper thread writes 150 ms later, and the handler ran;
 *   (c) pthread_kill(T, SIGUSR1) while T blocks in poll with no timeout and
 *       U blocks in poll on another pipe: T gets EINTR, U does not (it
 *       returns 1 when main then writes to its pipe);
 *   (d) a process-directed SIGALRM while main waits in pthread_join for a
 *       thread blocked in read: the kernel gives it to main, so the read is
 *       not interrupted and returns the byte a third thread writes later;
 *   (e) pthread_kill(T, SIGUSR2) whose handler sets a flag, while T loops
 *       "poll until the flag is set": T's EINTR comes after the handler
 *       ran, so T sees the flag and stops;
 *   (f) raise(SIGUSR1) in a worker while main polls with a 300 ms timeout:
 *       the signal is the worker's, main's poll times out (returns 0);
 *   (g) siginterrupt(SIGALRM, 1) after signal(): read fails with EINTR;
 *   (h) fork from a thread other than main, then in the child SIGALRM
 *       interrupts poll in the forking thread (the child's main thread);
 *   (i) ppoll with SIGUSR1 in its mask: a SIGUSR1 sent to the process
 *       meanwhile runs its handler elsewhere and the ppoll times out (0);
 *       with an empty mask, SIGALRM interrupts it (EINTR);
 *   (j) SIGALRM after 50 ms ends nanosleep(2 s) with EINTR and about 1.95 s
 *       left in *rem, sleep(2) returning 1 (the whole seconds left), and
 *       select with no fds and a
 *       2 s timeout with EINTR;
 *   (k) select and pselect interrupted by a SIGCHLD handler (a child that
 *       exits) leave the caller's fd sets as they were (Linux changes
 *       them only on a result): a cmake-style loop that retries on EINTR
 *       with the same sets then sees the fd a thread makes readable;
 *   (l) (last: it ends main with pthread_exit) a thread's sleep is
 *       interrupted by a process-directed signal after main has exited.
 * stdout: one "name: ok" line per check; "name: not ok" and a FAIL line on
 * stderr, exit 1, otherwise. */
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
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int g_handled;
static int g_failures;

static void on_signal(int sig) {
  (void)sig;
  atomic_fetch_add(&g_handled, 1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void report(const char* name, int ok, long rv, int err, double ms) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  if (!ok) {
    fprintf(stderr, "FAIL %s: returned %ld (errno %s) after %.0f ms, handler ran %d times\n", name, rv, strerror(err),
            ms, atomic_load(&g_handled));
    g_failures++;
  }
}

static void install(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void alarm_in_ms(int ms) {
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
}

enum Kind { kPoll, kSelect, kEpoll, kRead };
static const char* const kind_name[] = {"poll eintr", "select eintr", "epoll_wait eintr", "read eintr"};

static long wait_kind(enum Kind k, int fd, int ep) {
  char c;
  switch (k) {
    case kPoll: {
      struct pollfd p = {fd, POLLIN, 0};
      return poll(&p, 1, 5000);
    }
    case kSelect: {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(fd, &r);
      struct timeval tv = {5, 0};
      return select(fd + 1, &r, NULL, NULL, &tv);
    }
    case kEpoll: {
      struct epoll_event ev;
      return epoll_wait(ep, &ev, 1, 5000);
    }
    case kRead:
      return read(fd, &c, 1);
  }
  return -2;
}

static int g_late_wr;
static void* write_later(void* arg) {
  (void)arg;
  usleep(150 * 1000);
  if (write(g_late_wr, "z", 1) != 1) perror("write");
  return NULL;
}

struct Poller {
  int rd;
  long rv;
  int err;
};
static void* poll_forever(void* arg) {
  struct Poller* p = arg;
  struct pollfd f = {p->rd, POLLIN, 0};
  p->rv = poll(&f, 1, -1);
  p->err = p->rv < 0 ? errno : 0;
  return NULL;
}

static atomic_int g_stop;
static void on_stop(int sig) {
  (void)sig;
  atomic_store(&g_stop, 1);
}

/* Polls until the handler set g_stop; an EINTR before that would mean the
 * wait was interrupted before the handler ran. */
static void* poll_until_stop(void* arg) {
  struct Poller* p = arg;
  struct pollfd f = {p->rd, POLLIN, 0};
  double t0 = now_ms();
  for (;;) {
    p->rv = poll(&f, 1, 3000);
    p->err = p->rv < 0 ? errno : 0;
    if (atomic_load(&g_stop) || now_ms() - t0 > 3000) break;
  }
  if (!atomic_load(&g_stop)) p->rv = -2;
  return NULL;
}

static void* raise_later(void* arg) {
  (void)arg;
  usleep(50 * 1000);
  raise(SIGUSR1);
  return NULL;
}

static void* fork_and_wait(void* arg) {
  int* status = arg;
  pid_t c = fork();
  if (c == 0) {
    int a[2];
    if (pipe(a) != 0) _exit(3);
    alarm_in_ms(50);
    struct pollfd f = {a[0], POLLIN, 0};
    int rv = poll(&f, 1, 3000);
    _exit(rv == -1 && errno == EINTR ? 0 : 1);
  }
  int st = 0;
  if (waitpid(c, &st, 0) == c && WIFEXITED(st)) *status = WEXITSTATUS(st);
  return NULL;
}

static void* kill_process_later(void* arg) {
  (void)arg;
  usleep(50 * 1000);
  kill(getpid(), SIGUSR1);
  return NULL;
}

static void* sleep_after_main(void* arg) {
  (void)arg;
  double t0 = now_ms();
  unsigned s = sleep(2);
  report("sleep eintr after main exited", s == 1, (long)s, 0, now_ms() - t0);
  fflush(stdout);
  exit(g_failures ? 1 : 0);
}

static void* read_one(void* arg) {
  struct Poller* p = arg;
  char c;
  p->rv = read(p->rd, &c, 1);
  p->err = p->rv < 0 ? errno : 0;
  return NULL;
}

int main(void) {
  mnp_report_shim();
  int p[2];
  if (pipe(p) != 0) return 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);

  /* (a) */
  install(SIGALRM, 0);
  for (int k = kPoll; k <= kRead; k++) {
    int before = atomic_load(&g_handled);
    alarm_in_ms(50);
    double t0 = now_ms();
    long rv = wait_kind((enum Kind)k, p[0], ep);
    int err = errno;
    double ms = now_ms() - t0;
    report(kind_name[k], rv == -1 && err == EINTR && ms < 2000 && atomic_load(&g_handled) == before + 1, rv, err, ms);
  }

  /* (b) */
  install(SIGALRM, SA_RESTART);
  {
    int q[2];
    if (pipe(q) != 0) return 1;
    g_late_wr = q[1];
    int before = atomic_load(&g_handled);
    pthread_t t;
    pthread_create(&t, NULL, write_later, NULL);
    alarm_in_ms(50);
    char c = 0;
    double t0 = now_ms();
    long rv = read(q[0], &c, 1);
    int err = errno;
    pthread_join(t, NULL);
    report("read restarted", rv == 1 && c == 'z' && atomic_load(&g_handled) == before + 1, rv, err, now_ms() - t0);
    close(q[0]);
    close(q[1]);
  }

  /* (c) */
  install(SIGUSR1, 0);
  {
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0) return 1;
    struct Poller pt = {a[0], 0, 0}, pu = {b[0], 0, 0};
    pthread_t t, u;
    pthread_create(&t, NULL, poll_forever, &pt);
    pthread_create(&u, NULL, poll_forever, &pu);
    usleep(50 * 1000);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    usleep(20 * 1000);
    if (write(b[1], "u", 1) != 1) return 1;
    pthread_join(u, NULL);
    report("pthread_kill eintr", pt.rv == -1 && pt.err == EINTR, pt.rv, pt.err, 0);
    report("other thread not interrupted", pu.rv == 1, pu.rv, pu.err, 0);
  }
  /* (d) */
  install(SIGALRM, 0);
  {
    int q[2];
    if (pipe(q) != 0) return 1;
    g_late_wr = q[1];
    struct Poller pw = {q[0], 0, 0};
    pthread_t w, l;
    pthread_create(&w, NULL, read_one, &pw);
    pthread_create(&l, NULL, write_later, NULL);
    int before = atomic_load(&g_handled);
    alarm_in_ms(50);
    pthread_join(w, NULL);
    pthread_join(l, NULL);
    report("worker read not interrupted", pw.rv == 1 && atomic_load(&g_handled) == before + 1, pw.rv, pw.err, 0);
  }
  /* (e) */
  {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGUSR2, &sa, NULL);
    int a[2];
    if (pipe(a) != 0) return 1;
    struct Poller pt = {a[0], 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, poll_until_stop, &pt);
    usleep(50 * 1000);
    pthread_kill(t, SIGUSR2);
    pthread_join(t, NULL);
    report("handler ran before EINTR", pt.rv == -1 && pt.err == EINTR, pt.rv, pt.err, 0);
  }

  /* (f) */
  install(SIGUSR1, 0);
  {
    int a[2];
    if (pipe(a) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, raise_later, NULL);
    struct pollfd f = {a[0], POLLIN, 0};
    double t0 = now_ms();
    long rv = poll(&f, 1, 300);
    int err = errno;
    pthread_join(t, NULL);
    report("raise in a worker leaves main alone", rv == 0, rv, err, now_ms() - t0);
  }

  /* (g) */
  signal(SIGALRM, on_signal);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  siginterrupt(SIGALRM, 1); /* deprecated, still used by old programs */
#pragma GCC diagnostic pop
  {
    int before = atomic_load(&g_handled);
    alarm_in_ms(50);
    char c;
    double t0 = now_ms();
    long rv = read(p[0], &c, 1);
    int err = errno;
    report("siginterrupt read eintr", rv == -1 && err == EINTR && atomic_load(&g_handled) == before + 1, rv, err,
           now_ms() - t0);
  }

  /* (h) */
  install(SIGALRM, 0);
  {
    pthread_t t;
    int status = -1;
    pthread_create(&t, NULL, fork_and_wait, &status);
    pthread_join(t, NULL);
    report("eintr in a child forked from a thread", status == 0, status, 0, 0);
  }
  /* (i) */
  install(SIGUSR1, 0);
  install(SIGALRM, 0);
  {
    sigset_t only_usr1, none;
    sigemptyset(&only_usr1);
    sigaddset(&only_usr1, SIGUSR1);
    sigemptyset(&none);
    struct pollfd f = {p[0], POLLIN, 0};
    struct timespec ts = {0, 300 * 1000000L};
    pthread_t t;
    int before = atomic_load(&g_handled);
    pthread_create(&t, NULL, kill_process_later, NULL);
    double t0 = now_ms();
    long rv = ppoll(&f, 1, &ts, &only_usr1);
    int err = errno;
    pthread_join(t, NULL);
    report("ppoll mask keeps a signal out", rv == 0 && atomic_load(&g_handled) == before + 1, rv, err, now_ms() - t0);
    alarm_in_ms(50);
    ts.tv_sec = 5;
    ts.tv_nsec = 0;
    rv = ppoll(&f, 1, &ts, &none);
    err = errno;
    report("ppoll empty mask eintr", rv == -1 && err == EINTR, rv, err, 0);
  }
  /* (j) */
  install(SIGALRM, SA_RESTART); /* sleeps end early even so */
  {
    struct timespec req = {2, 0}, rem = {0, 0};
    alarm_in_ms(50);
    double t0 = now_ms();
    long rv = nanosleep(&req, &rem);
    int err = errno;
    double left = rem.tv_sec * 1e3 + rem.tv_nsec / 1e6;
    report("nanosleep eintr", rv == -1 && err == EINTR && left > 1500 && left < 2000, rv, err, now_ms() - t0);
    alarm_in_ms(50);
    t0 = now_ms();
    unsigned s = sleep(2);
    report("sleep eintr", s == 1 && now_ms() - t0 < 1500, (long)s, 0, now_ms() - t0);
    alarm_in_ms(50);
    struct timeval tv = {2, 0};
    t0 = now_ms();
    rv = select(0, NULL, NULL, NULL, &tv);
    err = errno;
    double tv_left = tv.tv_sec * 1e3 + tv.tv_usec / 1e3;
    report("select sleep eintr", rv == -1 && err == EINTR && now_ms() - t0 < 1500 && tv_left > 1500 && tv_left < 2000,
           rv, err, now_ms() - t0);
  }

  /* (k) */
  {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART; select is never restarted anyway */
    sigaction(SIGCHLD, &sa, NULL);
    for (int use_pselect = 0; use_pselect <= 1; use_pselect++) {
      int q[2];
      if (pipe(q) != 0) return 1;
      fd_set r, e;
      FD_ZERO(&r);
      FD_ZERO(&e);
      FD_SET(q[0], &r);
      FD_SET(q[0], &e);
      int before = atomic_load(&g_handled);
      pid_t child = fork();
      if (child == 0) {
        usleep(50 * 1000);
        _exit(0);
      }
      struct timeval tv = {5, 0};
      struct timespec ts = {5, 0};
      double t0 = now_ms();
      long rv = use_pselect ? pselect(q[0] + 1, &r, NULL, &e, &ts, NULL) : select(q[0] + 1, &r, NULL, &e, &tv);
      int err = errno;
      report(
          use_pselect ? "pselect eintr keeps the sets" : "select eintr keeps the sets",
          rv == -1 && err == EINTR && FD_ISSET(q[0], &r) && FD_ISSET(q[0], &e) && atomic_load(&g_handled) == before + 1,
          rv, err, now_ms() - t0);
      waitpid(child, NULL, 0);
      g_late_wr = q[1];
      pthread_t t;
      pthread_create(&t, NULL, write_later, NULL);
      tv.tv_sec = 5;
      tv.tv_usec = 0;
      do rv = use_pselect ? pselect(q[0] + 1, &r, NULL, &e, &ts, NULL) : select(q[0] + 1, &r, NULL, &e, &tv);
      while (rv == -1 && errno == EINTR);
      err = errno;
      pthread_join(t, NULL);
      report(use_pselect ? "pselect retry sees the fd" : "select retry sees the fd",
             rv == 1 && FD_ISSET(q[0], &r) && !FD_ISSET(q[0], &e), rv, err, 0);
      close(q[0]);
      close(q[1]);
    }
    signal(SIGCHLD, SIG_DFL);
  }

  /* (l) */
  {
    pthread_t t;
    pthread_create(&t, NULL, sleep_after_main, NULL);
    usleep(20 * 1000);
    alarm_in_ms(100);
    pthread_exit(NULL);
  }
}
