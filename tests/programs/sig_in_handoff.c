/* sig_in_handoff — a signal handler that waits, run on a thread blocked in
 * a call the shim hands to the kernel (issue 8, item 6: handlers may call
 * every async-signal-safe function the shim interposes, on any thread, at
 * any moment).
 *
 * The interleaving that crashed (SIGSEGV in the runtime, at 1 and 2 Ps):
 * thread T blocks in a call the shim cannot park, here a process-shared
 * futex wait (syscall(SYS_futex, FUTEX_WAIT) without FUTEX_PRIVATE_FLAG),
 * which runs in the kernel with T's P given up (entersyscall). Main sends
 * T SIGUSR1. The handler runs on T, inside that call, and waits: nanosleep,
 * a mutex main holds, a semaphore main posts, a read of an empty pipe. A
 * wait parks T, and park found T's M without a P: next_local(NULL).
 * Each round ends with main waking the futex; T's call returns (0 or
 * EINTR: the handler ran) and T goes round again. 200 rounds; after each
 * handler T must still be blocked in its call (the futex word unchanged)
 * and the handler's steps happen in order. A watchdog (alarm, default
 * action) ends a hang.
 *
 * stdout: "rounds=200", "handled=200", "sig_in_handoff: ok". */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kRounds = 200 };

static atomic_uint g_word; /* T waits while it is 0 (shared futex) */
static atomic_int g_round, g_in_wait, g_handled, g_steps_bad;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static sem_t g_go, g_done;
static int g_pipe[2];

static void on_usr1(int sig) {
  (void)sig;
  int saved = errno;
  struct timespec d = {0, 200000};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) {
  }
  sem_post(&g_done);             /* main: "in the handler" */
  while (sem_wait(&g_go) != 0) { /* main posts after it took g_mu */
  }
  pthread_mutex_lock(&g_mu); /* held by main for a while */
  pthread_mutex_unlock(&g_mu);
  char c;
  if (read(g_pipe[0], &c, 1) != 1 || c != 'p') atomic_fetch_add(&g_steps_bad, 1);
  if (atomic_load(&g_word) != 0) atomic_fetch_add(&g_steps_bad, 1);
  atomic_fetch_add(&g_handled, 1);
  sem_post(&g_done); /* main: "handler done" */
  errno = saved;
}

static void* blocker(void* arg) {
  (void)arg;
  for (int r = 0; r < kRounds; r++) {
    atomic_store(&g_in_wait, 1);
    while (atomic_load(&g_word) == 0) {
      long rc = syscall(SYS_futex, &g_word, FUTEX_WAIT, 0, NULL, NULL, 0);
      if (rc != 0 && errno != EINTR && errno != EAGAIN) {
        printf("FAIL futex wait: %s\n", strerror(errno));
        return NULL;
      }
    }
    atomic_store(&g_in_wait, 0);
    atomic_store(&g_word, 0);
    atomic_fetch_add(&g_round, 1);
  }
  return NULL;
}

static void sem_wait_all(sem_t* s) {
  while (sem_wait(s) != 0) {
  }
}

int main(void) {
  mnp_report_shim();
  alarm(60); /* default action: a hang dies of SIGALRM */
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);
  if (pipe(g_pipe) != 0) return 1;
  pthread_t t;
  pthread_create(&t, NULL, blocker, NULL);
  for (int r = 0; r < kRounds; r++) {
    /* Let T get into its futex wait (in_wait set, then a moment). */
    while (!atomic_load(&g_in_wait)) sched_yield();
    struct timespec d = {0, 300000};
    nanosleep(&d, NULL);
    pthread_kill(t, SIGUSR1);
    sem_wait_all(&g_done);
    pthread_mutex_lock(&g_mu);
    sem_post(&g_go);
    d.tv_nsec = 200000;
    nanosleep(&d, NULL); /* the handler now waits for g_mu */
    pthread_mutex_unlock(&g_mu);
    nanosleep(&d, NULL); /* and then for the pipe */
    if (write(g_pipe[1], "p", 1) != 1) return 1;
    sem_wait_all(&g_done);
    int before = atomic_load(&g_round);
    atomic_store(&g_word, 1);
    syscall(SYS_futex, &g_word, FUTEX_WAKE, 1, NULL, NULL, 0);
    while (atomic_load(&g_round) == before) sched_yield();
  }
  pthread_join(t, NULL);
  alarm(0);
  int ok = atomic_load(&g_round) == kRounds && atomic_load(&g_handled) == kRounds && atomic_load(&g_steps_bad) == 0;
  printf("rounds=%d\n", atomic_load(&g_round));
  printf("handled=%d\n", atomic_load(&g_handled));
  if (atomic_load(&g_steps_bad)) printf("FAIL handler steps out of order: %d\n", atomic_load(&g_steps_bad));
  printf("sig_in_handoff: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
