/* handoff_eintr — the runtime's own signal never ends a call the shim hands
 * to the kernel with EINTR, and errno is what glibc left (issue 12, item 4:
 * one blocking path, interpose/blocking.h).
 *
 * Interleaving this reproduces: thread W blocks in a call the shim cannot
 * park and runs in the kernel with the P handed off: a process-shared
 * sem_timedwait, pselect with nfds above FD_SETSIZE, a shared
 * syscall(SYS_futex, FUTEX_WAIT) with a timeout, SysV semtimedop. Main
 * waits until W's thread is in that system call (/proc/self/task/N/syscall
 * names it and its first argument), then makes a signalfd whose mask holds
 * the runtime's signal. Natively that is just a new fd. Under the shim the
 * runtime moves to another signal and sends every M a mask refresh: W's M
 * takes the runtime's signal inside the call, which the kernel then ends
 * with EINTR (a handler ran; these calls are not restarted). Main waits
 * until that thread has no signal pending any more (the call's result is
 * decided by then) and some thread is in W's call again, then wakes W. W's call must return success, as
 * natively: the EINTR was the runtime's, so the call is made again, and
 * errno is then what it was on entry (the retried call succeeds without
 * touching it). Before, only interpose/syscall.cpp's list retried the
 * runtime's EINTR, no mask refresh counted as the runtime's, and a retried
 * call left errno EINTR: every call here returned -1/EINTR to the program
 * (and with the refresh counted, succeeded with errno EINTR).
 * Each round the signalfd's mask holds SIGURG (the default runtime signal)
 * and the real-time signals the runtime may have moved to since (it takes
 * the highest free one). Every call starts with errno = 4242 and, having
 * succeeded, must leave it so; the scanf family and a join of a thread made
 * before main (glibc's own, the runtime starts at main) are checked the same
 * way. stdout: one line per call. alarm(30) ends a hang (a failure). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kErrnoMark = 4242, kBigNfds = FD_SETSIZE + 64 };

struct Wait {
  const char* name;
  long nr;  /* the system call W blocks in */
  long arg; /* its first argument */
  int (*call)(void);
  void (*wake)(void);
  int ret, err;
};

static sem_t g_sem;
static int g_pipe[2];
static unsigned long g_rset[kBigNfds / (8 * sizeof(unsigned long))];
static atomic_uint g_word;
static int g_semid = -1;
static int g_rounds;

static int sem_call(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 20;
  return sem_timedwait(&g_sem, &ts);
}
static void sem_wake(void) { sem_post(&g_sem); }

static int pselect_call(void) {
  FD_SET(g_pipe[0], (fd_set*)g_rset);
  return pselect(kBigNfds, (fd_set*)g_rset, NULL, NULL, NULL, NULL);
}
static void pselect_wake(void) {
  if (write(g_pipe[1], "x", 1) != 1) perror("write");
}

static int futex_call(void) {
  struct timespec rel = {20, 0};
  /* No FUTEX_PRIVATE_FLAG: the kernel's, with the P handed off. */
  return (int)syscall(SYS_futex, &g_word, FUTEX_WAIT, 0, &rel, NULL, 0);
}
static void futex_wake(void) {
  atomic_store(&g_word, 1);
  syscall(SYS_futex, &g_word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int semop_call(void) {
  struct sembuf op = {0, -1, 0};
  struct timespec rel = {20, 0};
  return semtimedop(g_semid, &op, 1, &rel);
}
static void semop_wake(void) {
  struct sembuf op = {0, 1, 0};
  semop(g_semid, &op, 1);
}

static void* waiter(void* a) {
  struct Wait* w = a;
  errno = kErrnoMark;
  w->ret = w->call();
  w->err = errno;
  return NULL;
}

/* The task of this process blocked in system call nr with first argument
 * arg, or 0. */
static int find_task(long nr, long arg) {
  DIR* d = opendir("/proc/self/task");
  int found = 0;
  struct dirent* e;
  while (d && !found && (e = readdir(d)) != NULL) {
    int tid = atoi(e->d_name);
    if (tid <= 0) continue;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    if (mnp_read_small_file(path, buf, sizeof buf) <= 0) continue;
    char* end;
    long n = strtol(buf, &end, 10);
    unsigned long a1 = strtoul(end, NULL, 16);
    if (n == nr && (long)a1 == arg) found = tid;
  }
  if (d) closedir(d);
  return found;
}

/* Bits 1..64 of a SigPnd line of a task's status, or -1. */
static long long task_sigpnd(int tid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  if (mnp_read_small_file(path, buf, sizeof buf) < 0) return -1;
  char* p = strstr(buf, "SigPnd:");
  return p ? (long long)strtoull(p + 7, NULL, 16) : -1;
}

static void run(struct Wait* w) {
  pthread_t t;
  pthread_create(&t, NULL, waiter, w);
  int tid = 0;
  for (int i = 0; i < 10000 && (tid = find_task(w->nr, w->arg)) == 0; i++) usleep(1000);
  if (tid == 0) fprintf(stderr, "%s: the waiter never reached its system call\n", w->name);
  /* A signalfd for the runtime's signal, wherever the earlier rounds moved
   * it (SIGURG, then SIGRTMAX, SIGRTMAX-1, ...). */
  g_rounds++;
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGURG);
  for (int i = 0; i < g_rounds; i++) sigaddset(&m, SIGRTMAX - i);
  int fd = signalfd(-1, &m, SFD_CLOEXEC);
  if (fd < 0) perror("signalfd");
  /* Whatever reached the waiter's thread has been taken by now, and so
   * its call's result decided; then the wake must find W in the call
   * again (a futex wait made again after the word changed would see
   * EAGAIN). W may be on another thread by then. */
  for (int i = 0; tid && i < 5000 && task_sigpnd(tid) != 0; i++) usleep(1000);
  for (int i = 0; i < 2000 && find_task(w->nr, w->arg) == 0; i++) usleep(1000);
  w->wake();
  pthread_join(t, NULL);
  if (fd >= 0) close(fd);
  printf("%s: ret=%d errno=%s\n", w->name, w->ret,
         w->ret == 0 || w->ret == 1 ? (w->err == kErrnoMark ? "kept" : "changed") : strerror(w->err));
  if (w->ret != 0 && w->ret != 1) fprintf(stderr, "%s: errno %d\n", w->name, w->err);
}

/* ---- a thread made before main: glibc's own (none of the runtime's) ---- */
static pthread_t g_early;
static atomic_int g_early_go;
static void* early(void* a) {
  (void)a;
  while (!atomic_load(&g_early_go)) usleep(1000);
  usleep(20000);
  return (void*)3;
}
__attribute__((constructor)) static void premain(void) { pthread_create(&g_early, NULL, early, NULL); }

int main(void) {
  mnp_report_shim();
  alarm(30);
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* The scanf family (__isoc99_*), which sets no errno when it converts. */
  FILE* f = fmemopen((char*)"17 23", 5, "r");
  int x = 0, y = 0;
  errno = kErrnoMark;
  int n = fscanf(f, "%d %d", &x, &y);
  printf("fscanf: ret=%d x=%d y=%d errno=%s\n", n, x, y, errno == kErrnoMark ? "kept" : "changed");
  fclose(f);

  /* Joined while it still runs: the join blocks in glibc's futex. */
  atomic_store(&g_early_go, 1);
  void* v = NULL;
  errno = kErrnoMark;
  int r = pthread_join(g_early, &v);
  printf("join of an early thread: ret=%d value=%ld errno=%s\n", r, (long)v, errno == kErrnoMark ? "kept" : "changed");

  sem_init(&g_sem, 1, 0);
  struct Wait ws = {"pshared sem_timedwait", SYS_futex, (long)&g_sem, sem_call, sem_wake, 0, 0};
  run(&ws);

  if (pipe(g_pipe) != 0) return 1;
  struct Wait wp = {"pselect above FD_SETSIZE", SYS_pselect6, kBigNfds, pselect_call, pselect_wake, 0, 0};
  run(&wp);

  struct Wait wf = {"shared futex wait", SYS_futex, (long)&g_word, futex_call, futex_wake, 0, 0};
  run(&wf);

  g_semid = semget(IPC_PRIVATE, 1, 0600);
  if (g_semid >= 0) {
    struct Wait wo = {"semtimedop", SYS_semtimedop, g_semid, semop_call, semop_wake, 0, 0};
    run(&wo);
    semctl(g_semid, 0, IPC_RMID);
  } else {
    perror("semget");
    printf("semtimedop: ret=0 errno=kept\n"); /* no SysV IPC here: as if it passed */
  }
  return 0;
}
