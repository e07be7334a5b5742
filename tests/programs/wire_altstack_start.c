/* wire_altstack_start.c — an alternate signal stack the initial thread
 * enabled before main stays the main thread's own.
 *
 * A constructor (it runs before the shim's runtime is up, as ASan's
 * start-up does) enables an alternate stack on the initial thread and
 * installs an SA_ONSTACK handler. The kernel keeps the alternate stack per
 * kernel thread: under the shim the main thread's kernel thread (M0) also
 * runs other threads whenever main parks, and, unless main is wired to it,
 * those threads found main's alternate stack enabled as their own and ran
 * their handlers on it (ASan's thread exit then unmapped it as theirs).
 * Here 8 threads, while main parks in join, each ask sigaltstack for theirs
 * (natively: none) and raise the signal at themselves (natively: the
 * handler runs on their own stack), parking in between; afterwards main
 * finds its own alternate stack enabled and its handler running on it.
 * Stdout: one line per side. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 8, kRounds = 20, kAltSize = 64 * 1024 };

static char* alt_lo;
static int ctor_ok;
static __thread volatile int on_main_alt;  // where this thread's last handler ran
static long long kthreads_max;

static void usr2(int sig) {
  (void)sig;
  char here;
  on_main_alt = &here >= alt_lo && &here < alt_lo + kAltSize;
}

__attribute__((constructor)) static void enable_altstack(void) {
  alt_lo = mmap(NULL, kAltSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt_lo == MAP_FAILED) return;
  stack_t ss = {.ss_sp = alt_lo, .ss_size = kAltSize, .ss_flags = 0};
  struct sigaction sa = {0};
  sa.sa_handler = usr2;
  sa.sa_flags = SA_ONSTACK;
  ctor_ok = sigaltstack(&ss, NULL) == 0 && sigaction(SIGUSR2, &sa, NULL) == 0;
}

static void* worker(void* a) {
  int id = (int)(intptr_t)a, seen = 0, ran_on = 0;
  for (int i = 0; i < kRounds; i++) {
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) seen++;
    on_main_alt = 0;
    pthread_kill(pthread_self(), SIGUSR2);
    if (on_main_alt) ran_on++;
    usleep(200);
  }
  long long k = mnp_kernel_threads();
  if (k > kthreads_max) kthreads_max = k;  // a rough maximum: races do not matter
  if (seen || ran_on)
    fprintf(stderr, "thread %d: an alternate stack enabled %d times, handler on main's %d times\n", id, seen, ran_on);
  return (void*)(intptr_t)(seen + ran_on);
}

int main(void) {
  mnp_report_shim();
  alarm(20);
  if (!ctor_ok) {
    puts("constructor failed");
    return 1;
  }
  int bad = 0;
  for (int round = 0; round < 4; round++) {
    pthread_t t[kThreads];
    for (int i = 0; i < kThreads; i++) pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i);
    for (int i = 0; i < kThreads; i++) {
      void* r;
      pthread_join(t[i], &r);
      if (r) bad++;
    }
  }
  printf("threads: %s\n", bad ? "saw main's alternate stack" : "none has an alternate stack");

  stack_t old;
  int kept = sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE) && (char*)old.ss_sp == alt_lo;
  on_main_alt = 0;
  pthread_kill(pthread_self(), SIGUSR2);
  printf("main: %s\n", kept && on_main_alt ? "alternate stack kept" : "alternate stack LOST");
  mnp_check("kthreads_max", kthreads_max);
  return bad || !kept || !on_main_alt;
}
