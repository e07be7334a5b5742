/* fork_ids — in a fork child, the parent's other threads are gone: their
 * thread ids name no thread of the child, and the child's own threads get
 * ids that work.
 *
 * Interleaving this reproduces: under the shim the child kept the parent's
 * Gs in its handle table, so a tgkill of a parent thread's id from the
 * child found the (copied, never to run) G and "succeeded" (natively ESRCH:
 * the id is a thread of another process), and signal scans and dumps still
 * visited those Gs.
 *
 * The parent has: a thread parked in read on a pipe, a thread spinning on
 * sched_yield, a finished joinable thread, and main. A fourth thread forks.
 * The child checks, with tgkill(getpid(), tid, 0): every parent id (main's,
 * i.e. the parent's pid, and each thread's) is ESRCH; its own id is the
 * child's pid and works; 4 new threads have distinct ids that work while
 * they live. stdout: fixed lines. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_pipe[2];
static atomic_int g_stop;
static pid_t g_tids[4]; /* main, reader, spinner, finished */
static pthread_barrier_t g_started;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static int probe(pid_t tid) { return syscall(SYS_tgkill, getpid(), tid, 0) == 0 ? 0 : errno; }

static void* reader(void* a) {
  (void)a;
  g_tids[1] = my_tid();
  pthread_barrier_wait(&g_started);
  char c;
  while (read(g_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}

static void* spinner(void* a) {
  (void)a;
  g_tids[2] = my_tid();
  pthread_barrier_wait(&g_started);
  while (!atomic_load(&g_stop)) sched_yield();
  return NULL;
}

static void* finished(void* a) {
  (void)a;
  g_tids[3] = my_tid();
  return NULL;
}

static pthread_barrier_t g_kids_up, g_kids_go;
static pid_t g_kid_tids[4];

static void* kid(void* a) {
  g_kid_tids[(long)a] = my_tid();
  pthread_barrier_wait(&g_kids_up);
  pthread_barrier_wait(&g_kids_go);
  return NULL;
}

static int child_checks(void) {
  static const char* names[4] = {"parent main", "parked reader", "spinner", "finished thread"};
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    int e = probe(g_tids[i]);
    printf("child: tgkill of the %s's id: %s\n", names[i], e == ESRCH ? "ESRCH" : e == 0 ? "ok" : "other error");
    bad |= e != ESRCH;
  }
  printf("child: own id is the pid: %s\n", my_tid() == getpid() ? "yes" : "no");
  printf("child: tgkill of own id: %s\n", probe(my_tid()) == 0 ? "ok" : "error");
  pthread_barrier_init(&g_kids_up, NULL, 5);
  pthread_barrier_init(&g_kids_go, NULL, 5);
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, kid, (void*)i);
  pthread_barrier_wait(&g_kids_up);
  int distinct = 1, reach = 1;
  for (int i = 0; i < 4; i++) {
    if (g_kid_tids[i] == getpid()) distinct = 0;
    for (int j = 0; j < 4; j++) {
      if (j != i && g_kid_tids[i] == g_kid_tids[j]) distinct = 0;
      if (g_kid_tids[i] == g_tids[j]) distinct = 0;
    }
    if (probe(g_kid_tids[i]) != 0) reach = 0;
  }
  pthread_barrier_wait(&g_kids_go);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("child: new threads have distinct ids: %s\n", distinct ? "yes" : "no");
  printf("child: new threads' ids reach them: %s\n", reach ? "yes" : "no");
  return bad || !distinct || !reach;
}

static void* forker(void* a) {
  (void)a;
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    int bad = child_checks();
    fflush(stdout);
    _exit(bad ? 1 : 0);
  }
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return (void*)(long)(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  if (pipe(g_pipe) != 0) return 2;
  g_tids[0] = my_tid();
  pthread_barrier_init(&g_started, NULL, 3);
  pthread_t r, s, f, k;
  pthread_create(&r, NULL, reader, NULL);
  pthread_create(&s, NULL, spinner, NULL);
  pthread_create(&f, NULL, finished, NULL);
  pthread_barrier_wait(&g_started);
  usleep(20000); /* let the finished thread finish; it stays unjoined */
  pthread_create(&k, NULL, forker, NULL);
  void* rv;
  pthread_join(k, &rv);
  printf("parent: child exit %ld\n", (long)rv);
  printf("parent: reader's id still reaches it: %s\n", probe(g_tids[1]) == 0 ? "yes" : "no");
  atomic_store(&g_stop, 1);
  if (write(g_pipe[1], "x", 1) != 1) return 2;
  pthread_join(r, NULL);
  pthread_join(s, NULL);
  pthread_join(f, NULL);
  return rv == NULL ? 0 : 1;
}
