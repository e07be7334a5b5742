/* sig_pending_chain — a signal that becomes pending while a handler's mask
 * blocks it runs as soon as that handler returns.
 *
 * SIGUSR2's handler blocks SIGUSR1 (sa_mask) and raises it: natively SIGUSR1
 * is delivered at the handler's return, before the code it interrupted goes
 * on. Here SIGUSR2 itself was pending while blocked and runs when
 * pthread_sigmask unblocks it, so under the shim a G runs both handlers from
 * its pending set; SIGUSR1's lands in a slot the scan had already passed (a
 * SIGWINCH taken before freed it), and it waited for sysmon's next round,
 * about 2 ms, after pthread_sigmask had returned (D's stop-the-world GC
 * was 8-20 times slower). On a second thread, then on main. Stdout: fixed lines,
 * the same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mnp_check.h"

static __thread volatile sig_atomic_t t_usr1, t_usr2, t_winch;

static void on_usr1(int sig) {
  (void)sig;
  t_usr1++;
}

static void on_usr2(int sig) {
  (void)sig;
  t_usr2++;
  raise(SIGUSR1); /* blocked by this handler's mask: pending until it returns */
}

static void on_winch(int sig) {
  (void)sig;
  t_winch++;
}

static void set(int how, int a, int b) {
  sigset_t s;
  sigemptyset(&s);
  if (a) sigaddset(&s, a);
  if (b) sigaddset(&s, b);
  pthread_sigmask(how, &s, NULL);
}

/* Rounds in which SIGUSR1's handler had run when pthread_sigmask returned. */
static int rounds(void) {
  int ok = 0;
  for (int r = 0; r < 20; r++) {
    t_usr1 = t_usr2 = t_winch = 0;
    set(SIG_BLOCK, SIGUSR2, SIGWINCH);
    raise(SIGWINCH);
    raise(SIGUSR2);
    set(SIG_UNBLOCK, SIGWINCH, 0);
    set(SIG_UNBLOCK, SIGUSR2, 0);
    if (t_winch == 1 && t_usr2 == 1 && t_usr1 == 1) ok++;
  }
  return ok;
}

static void* thread_rounds(void* arg) {
  *(int*)arg = rounds();
  return NULL;
}

int main(void) {
  mnp_report_shim();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaction(SIGUSR2, &sa, NULL);
  /* A thread first: under the shim the runtime is up from then on. */
  int other = 0;
  pthread_t t;
  pthread_create(&t, NULL, thread_rounds, &other);
  pthread_join(t, NULL);
  printf("thread: SIGUSR1 ran at its blocker's return in %d of 20 rounds\n", other);
  printf("main: SIGUSR1 ran at its blocker's return in %d of 20 rounds\n", rounds());
  return 0;
}
