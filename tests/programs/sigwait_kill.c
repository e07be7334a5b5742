/* sigwait_kill — pthread_kill to a thread waiting in sigwaitinfo, then in
 * sigtimedwait, for a signal it blocks; each call must return the signal
 * (natively it always does). The runtime puts such a signal in the
 * waiter's slot and ends its kernel call with its own signal: when that
 * EINTR was not marked as the runtime's, both calls returned -1/EINTR to
 * the program instead (2026-12-07, found in review). And its siginfo's
 * code is SI_USER, as glibc folds the kernel's SI_TKILL (the runtime gave
 * SI_TKILL from its slot). Prints what each call returned. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int waiting, done;

static void* waiter(void* arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  siginfo_t si;
  for (int round = 0; round < 20; round++) {
    atomic_store(&waiting, 1);
    int r = sigwaitinfo(&s, &si);
    if (r != SIGUSR1 || si.si_code != SI_USER) {  // glibc folds SI_TKILL into SI_USER
      printf("round %d: sigwaitinfo -> %d (%s) code %d\n", round, r, r < 0 ? strerror(errno) : "", si.si_code);
      atomic_store(&done, 1);
      return NULL;
    }
    atomic_store(&waiting, 1);
    struct timespec to = {5, 0};
    r = sigtimedwait(&s, &si, &to);
    if (r != SIGUSR1) {
      printf("round %d: sigtimedwait -> %d (%s)\n", round, r, r < 0 ? strerror(errno) : "");
      atomic_store(&done, 1);
      return NULL;
    }
  }
  puts("sigwaitinfo and sigtimedwait returned SIGUSR1 in 20 rounds");
  atomic_store(&done, 1);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  pthread_t t;
  pthread_create(&t, NULL, waiter, NULL);
  for (int i = 0; i < 40 && !atomic_load(&done); i++) {
    while (!atomic_exchange(&waiting, 0) && !atomic_load(&done)) usleep(100);
    if (atomic_load(&done)) break;
    usleep(2000);  // into its kernel call
    if (pthread_kill(t, SIGUSR1) != 0) break;
  }
  pthread_join(t, NULL);
  return 0;
}
