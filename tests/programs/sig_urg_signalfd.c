/* sig_urg_signalfd — a program that takes SIGURG, the runtime's default
 * signal, from a signalfd in its epoll set, as PostgreSQL 15 does for its
 * latches (issue 8; docs/ARCHITECTURE.md, "The runtime's signal").
 *
 * Interleaving this reproduces: the process ignores SIGURG (SIG_IGN), blocks
 * it, makes a signalfd for it and waits in epoll_wait; another process
 * sends kill(pid, SIGURG). Natively the signal stays pending (blocked) and
 * the signalfd is readable. Under the shim the runtime's signal was never
 * blocked in the kernel, so the program's SIGURG went to the runtime's
 * handler and was discarded: the wait never ended (pgbench against
 * PostgreSQL at MNP_PROCS=1 hung on its first lock wait).
 *   early: the signalfd is made before the process has a second thread (the
 *          postmaster's order), then threads start the runtime; a forked
 *          child that starts threads of its own makes its own signalfd and
 *          is signalled too (a backend's order);
 *   late:  SIGURG blocked, then threads (the runtime's handler is installed
 *          and idle Ms exist), then the signalfd;
 *   wait:  as late, then sigtimedwait for SIGURG instead of a signalfd.
 * Each round: the sender sends one SIGURG, the waiter must see it from the
 * signalfd (or sigtimedwait) within 10 s, then acknowledges over a pipe.
 * stdout: fixed lines. SIGALRM after 60 s (default action) ends a hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kRounds = 20 };

static void* spin_briefly(void* arg) {
  (void)arg;
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
  return NULL;
}

/* Some threads come and go, and one stays parked: the runtime is up, with
 * Ms that went idle. */
static int g_park[2];
static void* parked(void* arg) {
  (void)arg;
  char c;
  while (read(g_park[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}
static pthread_t g_parked;
static void start_threads(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, spin_briefly, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  if (pipe(g_park) != 0) exit(3);
  pthread_create(&g_parked, NULL, parked, NULL);
}
static void stop_threads(void) {
  if (write(g_park[1], "x", 1) != 1) exit(3);
  pthread_join(g_parked, NULL);
}

/* Natively a process-directed signal that some thread does not block goes
 * to that thread: every thread blocks SIGURG, so main blocks it before it
 * creates any. */
static void block_urg(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGURG);
  if (sigprocmask(SIG_BLOCK, &s, NULL) != 0) exit(3);
}

static int make_sigfd(void) {
  signal(SIGURG, SIG_IGN);
  block_urg();
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGURG);
  int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    perror("signalfd");
    exit(3);
  }
  return fd;
}

/* A child that sends SIGURG to `target` once per byte it reads from `go`,
 * and ends at EOF. */
static pid_t start_sender(pid_t target, int* go_w, int* ack_r) {
  int go[2], ack[2];
  if (pipe(go) != 0 || pipe(ack) != 0) exit(3);
  pid_t pid = fork();
  if (pid == 0) {
    close(go[1]);
    close(ack[0]);
    char c;
    while (read(go[0], &c, 1) == 1) {
      kill(target, SIGURG);
      if (write(ack[1], "k", 1) != 1) _exit(4);
    }
    _exit(0);
  }
  close(go[0]);
  close(ack[1]);
  *go_w = go[1];
  *ack_r = ack[0];
  return pid;
}

/* kRounds rounds: the sender sends one SIGURG, then wait_one must see it
 * (1) or the rounds end. Returns the number seen. */
typedef int (*WaitOne)(void* ctx, pid_t sender, int round);
static int rounds(pid_t target, WaitOne wait_one, void* ctx) {
  int go, ack;
  pid_t sender = start_sender(target, &go, &ack);
  int got = 0;
  for (int i = 0; i < kRounds; i++) {
    char c;
    if (write(go, "g", 1) != 1 || read(ack, &c, 1) != 1 || !wait_one(ctx, sender, i)) break;
    got++;
  }
  close(go);
  waitpid(sender, NULL, 0);
  close(ack);
  return got;
}

/* Through the signalfd in an epoll set. */
struct EpollCtx {
  int ep, sfd;
};
static int epoll_one(void* ctx, pid_t sender, int i) {
  struct EpollCtx* e = ctx;
  struct epoll_event out;
  int n;
  do n = epoll_wait(e->ep, &out, 1, 10000);
  while (n < 0 && errno == EINTR);
  if (n != 1) {
    fprintf(stderr, "round %d: epoll_wait %d (%s)\n", i, n, n < 0 ? strerror(errno) : "timeout");
    return 0;
  }
  struct signalfd_siginfo si;
  ssize_t r = read(e->sfd, &si, sizeof si);
  if (r != sizeof si || si.ssi_signo != SIGURG || si.ssi_pid != (uint32_t)sender) {
    fprintf(stderr, "round %d: read %zd signo %u pid %u\n", i, r, si.ssi_signo, si.ssi_pid);
    return 0;
  }
  return 1;
}
static int epoll_rounds(int sfd, pid_t target) {
  struct EpollCtx e = {epoll_create1(EPOLL_CLOEXEC), sfd};
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};
  if (e.ep < 0 || epoll_ctl(e.ep, EPOLL_CTL_ADD, sfd, &ev) != 0) exit(3);
  int got = rounds(target, epoll_one, &e);
  close(e.ep);
  return got;
}

/* Through sigtimedwait. */
static int sigwait_one(void* ctx, pid_t sender, int i) {
  (void)ctx;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGURG);
  struct timespec ten = {10, 0};
  siginfo_t si;
  int r;
  do r = sigtimedwait(&s, &si, &ten);
  while (r < 0 && errno == EINTR);
  if (r != SIGURG || si.si_pid != sender) {
    fprintf(stderr, "round %d: sigtimedwait %d (%s)\n", i, r, r < 0 ? strerror(errno) : "");
    return 0;
  }
  return 1;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  alarm(60);
  const char* mode = argc > 1 ? argv[1] : "early";
  if (strcmp(mode, "early") == 0) {
    int sfd = make_sigfd();
    start_threads();
    printf("early: %d of %d\n", epoll_rounds(sfd, getpid()), kRounds);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
      /* A backend: threads of its own first, then its own signalfd. */
      close(sfd);
      start_threads();
      int own = make_sigfd();
      printf("child: %d of %d\n", epoll_rounds(own, getpid()), kRounds);
      stop_threads();
      fflush(stdout);
      _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    stop_threads();
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  } else if (strcmp(mode, "late") == 0) {
    block_urg();
    start_threads();
    int sfd = make_sigfd();
    printf("late: %d of %d\n", epoll_rounds(sfd, getpid()), kRounds);
    stop_threads();
  } else if (strcmp(mode, "wait") == 0) {
    block_urg();
    start_threads();
    printf("wait: %d of %d\n", rounds(getpid(), sigwait_one, NULL), kRounds);
    stop_threads();
  } else {
    return 2;
  }
  return 0;
}
