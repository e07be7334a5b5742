/* sig_suspend_flag — sigsuspend returns only after the handler ran.
 *
 * Interleaving this reproduces (lbzip2): every thread blocks SIGUSR1 and
 * SIGUSR2; main waits in sigsuspend with an empty mask and then reads the
 * flag its handler sets; a worker sends kill(getpid(), SIGUSR2). Under the
 * shim the kernel call ended, but the handler was kept pending for main,
 * whose own mask still blocked the signal: sigsuspend returned with the
 * flag unset and lbzip2 took that for an error (exit 1). Cases: the signal
 * sent while main is suspended (20 rounds), and already pending for the
 * process before the call. stdout: one line per case. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile sig_atomic_t g_caught;

static void on_sig(int s) { g_caught = s; }

static void* sender(void* a) {
  usleep((useconds_t)(long)a);
  kill(getpid(), SIGUSR2);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(20);
  struct sigaction sa = {0};
  sa.sa_handler = on_sig;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigset_t both, empty;
  sigemptyset(&both);
  sigaddset(&both, SIGUSR1);
  sigaddset(&both, SIGUSR2);
  sigemptyset(&empty);
  pthread_sigmask(SIG_BLOCK, &both, NULL);
  int good = 0;
  for (int i = 0; i < 20; i++) {
    g_caught = 0;
    pthread_t t;
    pthread_create(&t, NULL, sender, (void*)(long)(1000 + i * 500));
    int r = sigsuspend(&empty);
    int e = errno;
    good += r == -1 && e == EINTR && g_caught == SIGUSR2;
    pthread_join(t, NULL);
  }
  printf("signal sent while suspended: flag set on return in %d of 20\n", good);
  g_caught = 0;
  pthread_t t;
  pthread_create(&t, NULL, sender, (void*)0L);
  pthread_join(t, NULL); /* SIGUSR2 now pending for the process */
  int r = sigsuspend(&empty);
  printf("signal pending before the call: %s, flag %s\n", r == -1 && errno == EINTR ? "EINTR" : "other",
         g_caught == SIGUSR2 ? "set" : "unset");
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("mask after: SIGUSR2 %s\n", sigismember(&now, SIGUSR2) ? "blocked" : "open");
  return 0;
}
