/* preempt_mask — asynchronous preemption must leave a thread's signal mask
 * as it was.
 *
 * sysmon preempts a G that runs past its slice by signalling its M; the
 * handler walks the G's stack (libunwind) to find a safe point. libunwind
 * calls sigprocmask while it walks. The runtime's signal was let in again
 * by those calls, and a second signal that arrived during a long walk ran
 * a second walk inside the first; when it ended it made the thread a G
 * again under the first walk's feet, whose next sigprocmask then wrote the
 * signal handler's mask (every signal blocked) into the G's own. CPython's
 * main thread ended up blocking every signal that way, and its
 * multiprocessing forkserver never saw a SIGCHLD (a hang at 1 P).
 *
 * Two hogs recurse 200 frames deep (so each walk is long) and spin with no
 * calls for 1.5 s at MNP_PROCS=1, preempted all the while; then each reads
 * its own mask, which must still be empty, and main checks that a SIGCHLD
 * from a child reaches its handler. argv[1] sets the depth: at 3000 the
 * walk used to give up (256 frames at most), the hogs were never
 * preempted, and main's 1.5 s sleep never ended at 1 P. */
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static int blocked_after[2];
static int g_depth = 200;

static unsigned long spin(void) {
  unsigned long x = 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

/* Deep frames that the compiler cannot fold: each keeps a live local. */
static __attribute__((noinline)) unsigned long deep(int n) {
  volatile unsigned long here = (unsigned long)n;
  if (n == 0) return spin();
  return deep(n - 1) + here;
}

static void* hog(void* arg) {
  int id = (int)(long)arg;
  (void)deep(g_depth);
  sigset_t cur;
  sigemptyset(&cur);
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  int n = 0;
  for (int s = 1; s < 32; s++) n += sigismember(&cur, s) == 1;
  blocked_after[id] = n;
  return NULL;
}

static volatile sig_atomic_t got_chld;
static void on_chld(int sig) {
  (void)sig;
  got_chld = 1;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1) g_depth = atoi(argv[1]);
  alarm(30);
  pthread_t t[2];
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, hog, (void*)i);
  struct timespec d = {1, 500 * 1000 * 1000};
  nanosleep(&d, NULL);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  printf("hogs: signals blocked after preemption: %d %d\n", blocked_after[0], blocked_after[1]);
  signal(SIGCHLD, on_chld);
  pid_t c = fork();
  if (c == 0) _exit(0);
  for (int i = 0; i < 500 && !got_chld; i++) usleep(10000);
  waitpid(c, NULL, 0);
  printf("main: SIGCHLD handler ran=%d\n", (int)got_chld);
  return 0;
}
