/* seccomp_trap — a program that sandboxes itself as browsers do: a seccomp
 * filter traps (SECCOMP_RET_TRAP: SIGSYS) pwritev2, preadv2 and mincore,
 * and its SIGSYS handler ends the process for any call it traps. Then
 * threads pass messages through pipes and sleep. The program itself never
 * makes those calls, so natively nothing is trapped; under the shim they
 * are the runtime's own (non-blocking reads and writes, parked stacks given
 * back), which must do without them instead of setting off the program's
 * handler (Firefox's content processes died of SIGSYS). The filter also
 * traps connect, which the handler emulates (sandboxes broker such calls):
 * the shim makes the program's connect with a system call instruction of
 * its own, and that trap must still reach the program's handler.
 * And a signalfd read, which the shim also tries with preadv2 first.
 * Stdout: the messages, the emulated connect and the signalfd read, the
 * same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile int emulated;

static void on_sigsys(int sig, siginfo_t* si, void* ucv) {
  (void)sig;
  if (si->si_syscall == SYS_connect) { /* brokered: pretend it worked */
    ((ucontext_t*)ucv)->uc_mcontext.gregs[REG_RAX] = 0;
    emulated++;
    return;
  }
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
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwritev2, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_preadv2, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mincore, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 1, 0),
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
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);
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
  /* The program's own trapped call, emulated by its handler. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(9); /* nobody listens: only the emulation can say 0 */
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int r = connect(s, (struct sockaddr*)&to, sizeof to);
  printf("connect %d, emulated by the program's handler %d time(s)\n", r, emulated);
  close(s);
  /* A signalfd read (the shim reads it with preadv2 first). SIGUSR1 has
   * been blocked since before the threads were made, in all of them. */
  int sfd = signalfd(-1, &usr1, 0);
  kill(getpid(), SIGUSR1);
  struct signalfd_siginfo ssi;
  ssize_t got = read(sfd, &ssi, sizeof ssi);
  printf("signalfd read %zd bytes, signal %d\n", got, got > 0 ? (int)ssi.ssi_signo : 0);
  close(sfd);
  return 0;
}
