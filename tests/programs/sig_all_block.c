/* sig_all_block — a signal every thread blocks stays pending for the
 * process, whatever the runtime's idle kernel threads did before. Threads
 * are made and joined (their Ms go to sleep between Gs with the masks of
 * the time), then the one thread left blocks SIGUSR1, kills its own process
 * with it and reads it from a signalfd; 20 rounds. An M asleep with an
 * older mask took the signal and its default action ended the process in
 * 2 runs of 3. Stdout: one line, the same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "mnp_check.h"

static void* brief(void* arg) {
  usleep(1000);
  return arg;
}

int main(void) {
  mnp_report_shim();
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  int taken = 0;
  for (int round = 0; round < 20; round++) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, brief, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    int fd = signalfd(-1, &usr1, SFD_CLOEXEC);
    kill(getpid(), SIGUSR1);
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo == SIGUSR1) taken++;
    close(fd);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  }
  printf("signals taken from the signalfd: %d of 20\n", taken);
  return 0;
}
