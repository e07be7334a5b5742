/* sig_all_block — a signal every thread blocks stays pending for the
 * process, whatever the runtime's idle kernel threads did before.
 *
 * Each round makes and joins threads (under the shim their Ms go to sleep
 * between Gs with the masks of the time), then the one thread left blocks
 * a signal, sends it to its own process with kill, checks that sigpending
 * shows it and reads it from a signalfd, or takes it with sigtimedwait.
 * SIGUSR1 (default action: end the process) and SIGCHLD (default action:
 * ignore) alternate, 20 rounds each way.
 * An M asleep with an older mask took SIGUSR1 and its default action ended
 * the process in 2 runs of 3; SIGCHLD was thrown away and the read waited
 * forever (a 2 s poll here).
 *
 * Then a child leaves SIGUSR1 pending while every thread blocks it, and
 * unblocks it: it must end by SIGUSR1, as natively.
 * Stdout: one line per part, the same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static void* brief(void* arg) {
  usleep(1000);
  return arg;
}

static void churn(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, brief, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

/* sigpending shows sig within a second (natively at once; under the shim
 * an instance the kernel gave to an idle kernel thread is in flight for a
 * few microseconds before the runtime keeps it). */
static int shows_pending(int sig) {
  for (int i = 0; i < 1000; i++) {
    sigset_t pend;
    sigemptyset(&pend);
    sigpending(&pend);
    if (sigismember(&pend, sig) == 1) return 1;
    usleep(1000);
  }
  return 0;
}

/* 1 if sig, sent to the process while every thread blocks it, is seen
 * pending and then taken: read from a signalfd (after a poll), or by
 * sigtimedwait (use_sigwait). */
static int round_of(int sig, int use_sigwait) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  churn();
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int fd = use_sigwait ? -1 : signalfd(-1, &set, SFD_CLOEXEC);
  kill(getpid(), sig);
  int ok = shows_pending(sig);
  if (use_sigwait) {
    struct timespec two = {2, 0};
    if (sigtimedwait(&set, NULL, &two) != sig) ok = 0;
  } else {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct signalfd_siginfo si;
    if (poll(&p, 1, 2000) != 1 || read(fd, &si, sizeof si) != (ssize_t)sizeof si || (int)si.ssi_signo != sig) ok = 0;
    close(fd);
  }
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  return ok;
}

int main(void) {
  mnp_report_shim();
  for (int use_sigwait = 0; use_sigwait < 2; use_sigwait++) {
    int usr1 = 0, chld = 0;
    for (int round = 0; round < 20; round++) {
      usr1 += round_of(SIGUSR1, use_sigwait);
      chld += round_of(SIGCHLD, use_sigwait);
    }
    printf("pending and %s: SIGUSR1 %d of 20, SIGCHLD %d of 20\n",
           use_sigwait ? "taken by sigtimedwait" : "read from a signalfd", usr1, chld);
  }
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    churn();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    churn();
    printf("still alive while SIGUSR1 is blocked\n");
    fflush(stdout);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    printf("survived an unblocked SIGUSR1\n");
    fflush(stdout);
    _exit(1);
  }
  int st = 0;
  waitpid(child, &st, 0);
  if (WIFSIGNALED(st)) printf("child ended by signal %d\n", WTERMSIG(st));
  else printf("child exited with %d\n", WEXITSTATUS(st));
  return 0;
}
