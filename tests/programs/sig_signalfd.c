/* sig_signalfd — threads that read signals from a signalfd get the ones
 * sent to them and the ones sent to the process (issue 8).
 *
 * Interleaving this reproduces: every thread blocks SIGUSR1 and SIGTERM, a
 * thread reads a signalfd in a loop, another thread sends it
 * pthread_kill(reader, SIGUSR1) or kill(getpid(), SIGTERM). Under the shim
 * the kernel's signalfd reads what is pending for the calling kernel thread
 * (an M) and the process, while a signal sent to one thread is kept by the
 * runtime for that G: the read never returned it (the program hung), and a
 * blocking read held its M in the kernel.
 *   (a) blocking read, four signals: kill SIGTERM, pthread_kill SIGUSR1,
 *       pthread_kill SIGTERM, kill SIGUSR1, one at a time;
 *   (b) non-blocking signalfd: EAGAIN; sigpending shows a pthread_kill'ed
 *       SIGUSR1 and a kill'ed SIGTERM; reads return the thread's first,
 *       then the process's, then EAGAIN;
 *   (c) poll on a signalfd wakes for pthread_kill and for kill;
 *   (d) epoll_wait on a signalfd wakes for kill;
 *   (e) 16 threads each block in read of their own signalfd; main
 *       pthread_kills each in turn: each gets its own signal, and under the
 *       shim kernel threads stay at P + a few (kthreads_max).
 * stdout: fixed lines. SIGALRM after 60 s (default action) ends a hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int g_ready, g_tid, g_got;
static long long g_kmax;

static void note_kthreads(void) {
  long long k = mnp_kernel_threads();
  if (k > g_kmax) g_kmax = k;
}

static const char* name(unsigned s) { return s == SIGUSR1 ? "SIGUSR1" : s == SIGTERM ? "SIGTERM" : "other"; }
static const char* code(int c) { return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : "other"; }

/* Until the reader sleeps: natively its task state is S; under the shim its
 * id names no kernel task, and a short sleep lets the G park. */
static void until_parked(int tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  for (int i = 0; i < 2000; i++) {
    if (mnp_read_small_file(path, buf, sizeof buf) < 0) break;
    const char* p = strrchr(buf, ')');
    if (p && p[1] == ' ' && p[2] == 'S') break;
    usleep(1000);
  }
  usleep(30000);
}

static sigset_t g_set;
static struct signalfd_siginfo g_rec[4];

static void* reader_a(void* a) {
  (void)a;
  int fd = signalfd(-1, &g_set, SFD_CLOEXEC);
  atomic_store(&g_tid, (int)gettid());
  for (int i = 0; i < 4; i++) {
    atomic_store(&g_ready, 1);
    ssize_t n = read(fd, &g_rec[i], sizeof g_rec[i]);
    if (n != (ssize_t)sizeof g_rec[i]) g_rec[i].ssi_signo = 0;
    atomic_store(&g_ready, 0);
    atomic_fetch_add(&g_got, 1);
  }
  close(fd);
  return NULL;
}

static void wait_got(int n) {
  for (int i = 0; i < 5000 && atomic_load(&g_got) < n; i++) usleep(1000);
}

static void part_a(void) {
  pthread_t r;
  atomic_store(&g_got, 0);
  pthread_create(&r, NULL, reader_a, NULL);
  for (int i = 0; i < 4; i++) {
    while (!atomic_load(&g_ready)) usleep(1000);
    until_parked(atomic_load(&g_tid));
    note_kthreads();
    if (i == 0) kill(getpid(), SIGTERM);
    if (i == 1) pthread_kill(r, SIGUSR1);
    if (i == 2) pthread_kill(r, SIGTERM);
    if (i == 3) kill(getpid(), SIGUSR1);
    wait_got(i + 1);
  }
  pthread_join(r, NULL);
  for (int i = 0; i < 4; i++)
    printf("(a) blocking read %d: %s %s pid ok %d\n", i, name(g_rec[i].ssi_signo), code(g_rec[i].ssi_code),
           g_rec[i].ssi_pid == (unsigned)getpid());
}

static sem_t g_go;
static void* reader_b(void* a) {
  (void)a;
  int fd = signalfd(-1, &g_set, SFD_NONBLOCK);
  struct signalfd_siginfo rec[4];
  ssize_t n = read(fd, rec, sizeof rec);
  printf("(b) empty: %zd %s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "?");
  atomic_store(&g_ready, 1);
  while (sem_wait(&g_go) != 0) {
  }
  sigset_t p;
  sigpending(&p);
  printf("(b) sigpending: SIGUSR1 %d SIGTERM %d\n", sigismember(&p, SIGUSR1), sigismember(&p, SIGTERM));
  for (int i = 0; i < 3; i++) {
    n = read(fd, rec, sizeof rec[0]);
    if (n > 0) printf("(b) read %d: %s %s\n", i, name(rec[0].ssi_signo), code(rec[0].ssi_code));
    else printf("(b) read %d: %zd %s\n", i, n, errno == EAGAIN ? "EAGAIN" : "?");
  }
  close(fd);
  return NULL;
}

static void part_b(void) {
  pthread_t r;
  atomic_store(&g_ready, 0);
  sem_init(&g_go, 0, 0);
  pthread_create(&r, NULL, reader_b, NULL);
  while (!atomic_load(&g_ready)) usleep(1000);
  pthread_kill(r, SIGUSR1);
  kill(getpid(), SIGTERM);
  usleep(20000);
  sem_post(&g_go);
  pthread_join(r, NULL);
}

static int g_epoll;
static void* reader_c(void* a) {
  (void)a;
  int fd = signalfd(-1, &g_set, SFD_NONBLOCK);
  atomic_store(&g_tid, (int)gettid());
  for (int i = 0; i < 2; i++) {
    struct pollfd p = {fd, POLLIN, 0};
    atomic_store(&g_ready, 1);
    int r = poll(&p, 1, 30000);
    atomic_store(&g_ready, 0);
    struct signalfd_siginfo rec;
    ssize_t n = read(fd, &rec, sizeof rec);
    printf("(c) poll %d: %d revents POLLIN %d, read %s %s\n", i, r, (p.revents & POLLIN) != 0,
           n > 0 ? name(rec.ssi_signo) : "nothing", n > 0 ? code(rec.ssi_code) : "-");
    atomic_fetch_add(&g_got, 1);
  }
  if (g_epoll) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    atomic_store(&g_ready, 1);
    struct epoll_event out;
    int r = epoll_wait(ep, &out, 1, 30000);
    atomic_store(&g_ready, 0);
    struct signalfd_siginfo rec;
    ssize_t n = read(fd, &rec, sizeof rec);
    printf("(d) epoll_wait: %d data %llu, read %s %s\n", r, (unsigned long long)out.data.u64,
           n > 0 ? name(rec.ssi_signo) : "nothing", n > 0 ? code(rec.ssi_code) : "-");
    close(ep);
    atomic_fetch_add(&g_got, 1);
  }
  close(fd);
  return NULL;
}

static void part_cd(void) {
  pthread_t r;
  atomic_store(&g_got, 0);
  atomic_store(&g_ready, 0);
  g_epoll = 1;
  pthread_create(&r, NULL, reader_c, NULL);
  for (int i = 0; i < 3; i++) {
    while (!atomic_load(&g_ready)) usleep(1000);
    until_parked(atomic_load(&g_tid));
    if (i == 0) pthread_kill(r, SIGUSR1);
    else kill(getpid(), SIGTERM);
    wait_got(i + 1);
  }
  pthread_join(r, NULL);
}

enum { kReaders = 16 };
static atomic_int g_parked, g_right;
static void* reader_e(void* a) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGUSR1);
  int fd = signalfd(-1, &one, 0);
  atomic_fetch_add(&g_parked, 1);
  struct signalfd_siginfo rec;
  ssize_t n = read(fd, &rec, sizeof rec);
  if (n == (ssize_t)sizeof rec && rec.ssi_signo == SIGUSR1 && rec.ssi_code == SI_TKILL) atomic_fetch_add(&g_right, 1);
  (void)a;
  close(fd);
  return NULL;
}

static void part_e(void) {
  pthread_t t[kReaders];
  for (int i = 0; i < kReaders; i++) pthread_create(&t[i], NULL, reader_e, NULL);
  while (atomic_load(&g_parked) < kReaders) usleep(1000);
  usleep(100000);
  note_kthreads();
  for (int i = 0; i < kReaders; i++) {
    pthread_kill(t[i], SIGUSR1);
    pthread_join(t[i], NULL);
  }
  printf("(e) %d readers, each pthread_kill'ed: %d got their own\n", kReaders, atomic_load(&g_right));
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  sigemptyset(&g_set);
  sigaddset(&g_set, SIGUSR1);
  sigaddset(&g_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &g_set, NULL);
  part_a();
  part_b();
  part_cd();
  part_e();
  mnp_check("kthreads_max", g_kmax);
  return 0;
}
