/* sig_yield_loop — a thread that calls sched_yield in a loop until its
 * SIGUSR1 handler sets a flag, and main's pthread_kill to it, 50 times.
 *
 * Natively the handler runs at the return of the kernel's sched_yield,
 * well under a millisecond after the kill. Under the runtime a loop of
 * yields spends nearly all its time in the shim's own code, where a
 * signal kept for the G and sysmon's kick to run it are put off; before
 * sched_yield ran due handlers itself, one round took up to 46 s at 2 Ps
 * (the runner's time limit ends such a run). Prints the round count. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "mnp_check.h"

enum { kRounds = 50 };

static atomic_int got, ready;

static void on_usr1(int sig) {
  (void)sig;
  atomic_store(&got, 1);
}

static void* spinner(void* arg) {
  (void)arg;
  atomic_store(&ready, 1);
  while (!atomic_load(&got)) sched_yield();
  return NULL;
}

int main(void) {
  mnp_report_shim();
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return 1;
  int rounds = 0;
  for (int i = 0; i < kRounds; i++) {
    atomic_store(&got, 0);
    atomic_store(&ready, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, spinner, NULL) != 0) return 1;
    while (!atomic_load(&ready)) sched_yield();
    if (pthread_kill(t, SIGUSR1) != 0) return 1;
    if (pthread_join(t, NULL) != 0) return 1;
    rounds++;
  }
  printf("rounds %d\n", rounds);
  return 0;
}
