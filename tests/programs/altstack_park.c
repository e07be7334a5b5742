/* altstack_park — a thread parked inside a handler that runs on its
 * alternate signal stack keeps that handler's frame, the interrupted
 * context at the top of the stack among it, while other signals arrive.
 *
 * The worker enables an alternate stack (under the shim it moves with the
 * thread from kernel thread to kernel thread) and takes SIGUSR1 on it with
 * SA_ONSTACK; the
 * handler copies the interrupted context's registers, waits on a semaphore
 * (it parks there, as SBCL's threads wait in their stop-for-GC handler),
 * and compares them when it wakes. Meanwhile main, which blocks SIGUSR2,
 * sends SIGUSR2 (also SA_ONSTACK) to the process five times, busy between
 * sends so that its own kernel thread keeps blocking it. Natively the
 * worker takes each SIGUSR2 on its alternate stack, below the frames that
 * are there. Under the shim the kernel may give it to the worker's kernel
 * thread while the worker is parked: that thread is on its scheduler stack,
 * and the kernel took the alternate stack for free and wrote the new frame
 * over the waiting handler's (SBCL: "garbage_collect: no SP known for
 * thread", and hangs; the handler's sigreturn then resumed the scheduler).
 * 50 rounds. Stdout: fixed lines, the same natively.
 *
 * With the argument "autodisarm" the stack is enabled with SS_AUTODISARM:
 * the kernel disarms it while a handler runs there, and a nested signal
 * goes at the stack pointer, below the handler's frames. Under the shim
 * the stack was once put back armed when the parked handler's thread
 * resumed on another kernel thread, and the next signal's frame landed at
 * its top, over them (SIGSEGV in 1 run of 3 at 1 P). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "mnp_check.h"

enum { kRounds = 50 };

static sem_t g_in_handler, g_go, g_ready;
static volatile sig_atomic_t g_usr2_runs;
static volatile int g_intact, g_stop;

static void on_usr2(int sig) {
  (void)sig;
  g_usr2_runs++;
}

static void on_usr1(int sig, siginfo_t* si, void* ucv) {
  (void)sig;
  (void)si;
  ucontext_t* uc = ucv;
  greg_t saved[NGREG];
  memcpy(saved, uc->uc_mcontext.gregs, sizeof saved);
  sem_post(&g_in_handler);
  while (sem_wait(&g_go) != 0 && errno == EINTR) {
  }
  if (memcmp(saved, uc->uc_mcontext.gregs, sizeof saved) == 0) g_intact++;
}

static int g_ss_flags; /* 0, or SS_AUTODISARM */

static void* worker(void* arg) {
  (void)arg;
  stack_t ss = {.ss_sp = malloc(256 * 1024), .ss_size = 256 * 1024, .ss_flags = g_ss_flags};
  if (!ss.ss_sp || sigaltstack(&ss, NULL) != 0) {
    perror("sigaltstack");
    exit(3);
  }
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
  sem_post(&g_ready);
  /* Running in its own code (not parked, not in a call) when SIGUSR1
   * comes: the kernel runs its handler on the alternate stack, under the
   * shim too. */
  while (!g_stop) __asm__ volatile("pause" ::: "memory");
  return NULL;
}

static void busy_ms(int ms) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ms * 1000000L);
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1 && strcmp(argv[1], "autodisarm") == 0) g_ss_flags = (int)(1U << 31); /* SS_AUTODISARM */
  sem_init(&g_in_handler, 0, 0);
  sem_init(&g_go, 0, 0);
  sem_init(&g_ready, 0, 0);
  struct sigaction sa = {0};
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  struct sigaction sb = {0};
  sb.sa_handler = on_usr2;
  sb.sa_flags = SA_ONSTACK | SA_RESTART;
  sigemptyset(&sb.sa_mask);
  sigaction(SIGUSR2, &sb, NULL);
  /* Only the worker lets SIGUSR2 in (it unblocks it itself). */
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  while (sem_wait(&g_ready) != 0 && errno == EINTR) {
  }
  for (int r = 0; r < kRounds; r++) {
    pthread_kill(t, SIGUSR1);
    while (sem_wait(&g_in_handler) != 0 && errno == EINTR) {
    }
    for (int k = 0; k < 5; k++) {
      kill(getpid(), SIGUSR2);
      busy_ms(1);
    }
    sem_post(&g_go);
  }
  g_stop = 1;
  pthread_join(t, NULL);
  printf("handler contexts intact: %d of %d\n", g_intact, kRounds);
  printf("SIGUSR2 handled: %s\n", g_usr2_runs > 0 ? "yes" : "no");
  return 0;
}
