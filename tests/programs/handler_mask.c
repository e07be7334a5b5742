/* handler_mask.c — inside a signal handler the thread's mask is the one the
 * kernel gives it: the interrupted mask, the action's sa_mask and (without
 * SA_NODEFER) the signal itself; after the handler, the interrupted mask
 * again, with whatever the handler changed in its context's saved mask.
 *
 * Under the shim pthread_sigmask reads a G's own mask, which stayed the
 * interrupted one while a handler ran: SBCL checks in its handlers that the
 * signals it installed them to block are blocked, and died of "fatal error
 * ... blockables unblocked" on every Lisp error a thread raised. A thread
 * (a G under the shim) runs handlers delivered in several ways and prints
 * what pthread_sigmask says inside and after each:
 *   pthread_kill to itself, raise, a fault (int3: SIGTRAP), kill of the
 *   process from another thread while this one spins, a handler that parks
 *   (usleep) before it looks, SA_NODEFER, a handler that takes SIGUSR2 out
 *   of its context's saved mask (which must stick after it returns), and
 *   SIGURG, the runtime's own signal by default, and a handler that leaves
 *   with siglongjmp (the saved mask must come back, and the same signal
 *   reach the thread again).
 * And the mask saved in the handler's context, which sigreturn restores, for
 * a thread that blocks SIGURG (the runtime's signal, which the kernel never
 * blocks under the shim) with SIGHUP: it shows both blocked, whether the
 * signal interrupted the thread running or asleep (SBCL checks that its
 * deferrable signals, SIGURG among them, are all blocked or all open there,
 * and died of "deferrable signals partially blocked"); a handler that takes
 * SIGURG out of it unblocks it for the thread, as sigreturn would.
 * Stdout: one line per case. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile int in_self, in_usr2, in_term, in_hup;
static volatile int park_in_handler, drop_usr2_from_uc, jump_out, drop_urg_from_uc;
static volatile int uc_urg, uc_hup;
static sigjmp_buf jump_env;
static volatile int got;

static void handler(int sig, siginfo_t* si, void* ucv) {
  (void)si;
  if (park_in_handler) usleep(2000);
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  in_self = sigismember(&cur, sig);
  in_usr2 = sigismember(&cur, SIGUSR2);
  in_term = sigismember(&cur, SIGTERM);
  in_hup = sigismember(&cur, SIGHUP);
  if (drop_usr2_from_uc) sigdelset(&((ucontext_t*)ucv)->uc_sigmask, SIGUSR2);
  uc_urg = sigismember(&((ucontext_t*)ucv)->uc_sigmask, SIGURG);
  uc_hup = sigismember(&((ucontext_t*)ucv)->uc_sigmask, SIGHUP);
  if (drop_urg_from_uc) sigdelset(&((ucontext_t*)ucv)->uc_sigmask, SIGURG);
  got = 1;
  if (jump_out) siglongjmp(jump_env, 1);
}

static void install(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaction(sig, &sa, NULL);
}

/* One line: the mask seen inside (signal itself, SIGUSR2, SIGTERM from
 * sa_mask, SIGHUP from the interrupted mask) and after. */
static void report(const char* how) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  printf("%s: ran=%d inside sig=%d usr2=%d term=%d hup=%d; after usr2=%d term=%d hup=%d\n", how, got, in_self, in_usr2,
         in_term, in_hup, sigismember(&cur, SIGUSR2), sigismember(&cur, SIGTERM), sigismember(&cur, SIGHUP));
  fflush(stdout);
  got = in_self = in_usr2 = in_term = in_hup = -1;
}

/* One line: SIGURG and SIGHUP in the context's saved mask, and SIGURG in
 * the thread's mask after the handler. */
static void report_context(const char* how) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  printf("%s: ran=%d context urg=%d hup=%d; after urg=%d\n", how, got, uc_urg, uc_hup, sigismember(&cur, SIGURG));
  fflush(stdout);
  got = uc_urg = uc_hup = -1;
}

static volatile int spinning, stop_spin;
static pthread_t worker_thread;
static volatile int worker_asleep;

static void* waker(void* a) {
  (void)a;
  while (!worker_asleep) usleep(100);
  usleep(5000);
  pthread_kill(worker_thread, SIGUSR1);
  return NULL;
}

static void* killer(void* a) {
  (void)a;
  while (!spinning) usleep(100);
  kill(getpid(), SIGUSR1);
  while (got != 1) usleep(100);
  stop_spin = 1;
  return NULL;
}

static void* worker(void* a) {
  (void)a;
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, NULL);
  install(SIGUSR1, 0);
  install(SIGTRAP, 0);
  install(SIGURG, 0);
  pthread_kill(pthread_self(), SIGUSR1);
  report("pthread_kill self");
  raise(SIGUSR1);
  report("raise");
  __asm__ volatile("int3");
  report("int3 fault");
  usleep(1000);
  pthread_kill(pthread_self(), SIGURG);
  report("SIGURG");
  park_in_handler = 1;
  pthread_kill(pthread_self(), SIGUSR1);
  park_in_handler = 0;
  report("parks in the handler");
  install(SIGUSR1, SA_NODEFER);
  raise(SIGUSR1);
  report("SA_NODEFER");
  install(SIGUSR1, 0);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL);
  drop_usr2_from_uc = 1;
  raise(SIGUSR1);
  drop_usr2_from_uc = 0;
  report("handler unblocks SIGUSR2 in its context");
  pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
  /* A handler that leaves with siglongjmp (the saved mask comes back),
   * and the same signal raised again must reach it. */
  if (sigsetjmp(jump_env, 1) == 0) {
    jump_out = 1;
    raise(SIGUSR1);
  }
  jump_out = 0;
  report("siglongjmp out of the handler");
  raise(SIGUSR1);
  report("the same signal after the jump");

  sigset_t urg;
  sigemptyset(&urg);
  sigaddset(&urg, SIGURG);
  pthread_sigmask(SIG_BLOCK, &urg, NULL);
  pthread_kill(pthread_self(), SIGUSR1);
  report_context("SIGURG blocked, pthread_kill self");
  pthread_t wk;
  worker_thread = pthread_self();
  pthread_create(&wk, NULL, waker, NULL);
  worker_asleep = 1;
  while (got != 1) usleep(20000); /* the handler ends a sleep early (EINTR) */
  pthread_join(wk, NULL);
  report_context("SIGURG blocked, woken from a sleep");
  drop_urg_from_uc = 1;
  raise(SIGUSR1);
  drop_urg_from_uc = 0;
  report_context("handler unblocks SIGURG in its context");
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_t w;
  pthread_create(&w, NULL, worker, NULL);
  pthread_join(w, NULL);

  /* kill of the process from another thread while this one spins: the
   * killer blocks SIGUSR1, so main is the only thread that can take it. */
  sigset_t mainmask;
  sigemptyset(&mainmask);
  sigaddset(&mainmask, SIGHUP);
  pthread_sigmask(SIG_SETMASK, &mainmask, NULL);
  install(SIGUSR1, 0);
  sigset_t blk;
  sigemptyset(&blk);
  sigaddset(&blk, SIGUSR1);
  pthread_t k;
  pthread_sigmask(SIG_BLOCK, &blk, NULL);
  pthread_create(&k, NULL, killer, NULL); /* inherits SIGUSR1 blocked */
  pthread_sigmask(SIG_UNBLOCK, &blk, NULL);
  spinning = 1;
  while (!stop_spin) {
  }
  pthread_join(k, NULL);
  report("kill of the process while spinning");
  return 0;
}
