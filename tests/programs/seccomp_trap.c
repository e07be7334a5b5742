/* seccomp_trap — a program that sandboxes itself as browsers do: a seccomp
 * filter traps (SECCOMP_RET_TRAP: SIGSYS) pwritev2, preadv2 and mincore,
 * and its SIGSYS handler ends the process for any call it traps. Then
 * threads pass messages through pipes and sleep. The program itself never
 * makes those calls, so natively nothing is trapped; under the shim they
 * are the runtime's own (non-blocking reads and writes, parked stacks given
 * back), which must do without them instead of setting off the program's
 * handler (Firefox's content processes died of SIGSYS).
 * Stdout: the messages, the same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

static void on_sigsys(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  char msg[96];
  int n = snprintf(msg, sizeof msg, "seccomp_trap: system call %d trapped\n", si->si_syscall);
  write(2, msg, (size_t)n);
  _exit(3);
}

static int sandbox(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwritev2, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_preadv2, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mincore, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

#define PAIRS 4
#define ROUNDS 200

static void* echo(void* arg) {
  int* fds = arg; /* fds[0]: read end of the request pipe, fds[1]: write end of the reply pipe */
  char buf[64];
  for (int i = 0; i < ROUNDS; i++) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) return (void*)1;
    if (i % 50 == 0) usleep(2000); /* parks: sysmon may give back its stack pages */
    if (write(fds[1], buf, (size_t)n) != n) return (void*)1;
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSYS, &sa, NULL);
  if (sandbox() != 0) {
    perror("seccomp");
    return 1;
  }
  int req[PAIRS][2], rep[PAIRS][2], ends[PAIRS][2];
  pthread_t t[PAIRS];
  for (int p = 0; p < PAIRS; p++) {
    if (pipe(req[p]) != 0 || pipe(rep[p]) != 0) return 1;
    ends[p][0] = req[p][0];
    ends[p][1] = rep[p][1];
    pthread_create(&t[p], NULL, echo, ends[p]);
  }
  long sum = 0;
  for (int i = 0; i < ROUNDS; i++)
    for (int p = 0; p < PAIRS; p++) {
      char msg[32], back[32];
      int n = snprintf(msg, sizeof msg, "%d:%d", p, i);
      if (write(req[p][1], msg, (size_t)n) != n || read(rep[p][0], back, sizeof back) != n) return 1;
      sum += memcmp(msg, back, (size_t)n) == 0;
    }
  usleep(300 * 1000); /* long enough for a stack shrink walk (100 ms apart) */
  for (int p = 0; p < PAIRS; p++) {
    void* r;
    pthread_join(t[p], &r);
    if (r) return 1;
  }
  printf("echoed %ld of %d messages under a seccomp filter\n", sum, PAIRS * ROUNDS);
  return 0;
}
