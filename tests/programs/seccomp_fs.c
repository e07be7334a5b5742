/* seccomp_fs — threads switch under a seccomp filter that refuses
 * arch_prctl (EPERM), as Chromium's sandboxed children do. Natively
 * nothing notices: threads never set their FS base themselves. Under the
 * shim on a CPU without FSGSBASE every switch between two threads' TLS
 * needs arch_prctl(ARCH_SET_FS): the runtime must stop the process with
 * its one-line message, not run a thread on another's TLS (until
 * 2026-12-07 the refused write went unnoticed and the process hung or
 * worse). With FSGSBASE the runtime needs no arch_prctl and the
 * ping-pong completes.
 *
 * A child installs the filter and ping-pongs 1,000 times with a thread
 * over two semaphores; the parent reads its stderr and prints one line,
 * the same for both good outcomes. Failure: "hung or crashed" (the child
 * has 10 s). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static sem_t g_a, g_b;

static void* pong(void* arg) {
  for (int i = 0; i < 1000; i++) {
    sem_wait(&g_a);
    sem_post(&g_b);
  }
  return arg;
}

static int child(void) {
  alarm(10);
  struct sock_filter f[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_arch_prctl, 0, 1),
                            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 2;
  sem_init(&g_a, 0, 0);
  sem_init(&g_b, 0, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, pong, NULL) != 0) return 3;
  for (int i = 0; i < 1000; i++) {
    sem_post(&g_a);
    sem_wait(&g_b);
  }
  pthread_join(t, NULL);
  return 0;
}

int main(void) {
  mnp_report_shim();
  fflush(NULL);
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    _exit(child());
  }
  close(p[1]);
  char err[8192];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof err - 1 && (n = read(p[0], err + got, sizeof err - 1 - got)) > 0) got += (size_t)n;
  err[got] = 0;
  int st = 0;
  waitpid(pid, &st, 0);
  int completed = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  int told = !WIFEXITED(st) || WEXITSTATUS(st) != 0 ? strstr(err, "arch_prctl(ARCH_SET_FS) failed") != NULL : 0;
  printf("ping-pong under a filter refusing arch_prctl: %s\n",
         completed || told ? "completed, or stopped with the runtime's message" : "hung or crashed");
  if (!completed && !told) fprintf(stderr, "child status %#x, stderr: %s\n", st, err);
  return 0;
}
