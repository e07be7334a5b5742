/* fork_load — fork while other threads lock, wait and wake.
 *
 * 16 threads in 8 mutex/condvar ping-pong pairs run while another thread
 * forks 50 times; each child creates and joins 4 threads, checks their
 * results and _exits with a status the parent checks. Then main waits
 * until every pair has made a round (none is starved by the others) and
 * stops them.
 *
 * Regression (issue 8, "fork under load hangs"): at 2 Ps the runtime hung
 * within seconds, with 3 Gs "running" on 2 Ps and runnable Gs that never
 * ran again. A watchdog (alarm) prints the phase and exits 3 on a hang.
 * stdout: deterministic summary lines. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kPairs = 8, kForks = 50, kChildThreads = 4, kWatchdogSeconds = 30 };

struct Pair {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int turn; /* 0 or 1: whose move it is */
  long rounds;
};

static struct Pair g_pair[kPairs];
static atomic_int g_stop;
static volatile sig_atomic_t g_phase;

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "fork_load: watchdog: hang in phase ";
  char c[2] = {(char)('0' + g_phase), '\n'};
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, c, 2);
  _exit(3);
}

struct Side {
  struct Pair* p;
  int me;
};

static void* ping(void* arg) {
  struct Side* s = arg;
  struct Pair* p = s->p;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->turn != s->me && !atomic_load(&g_stop)) pthread_cond_wait(&p->cv, &p->mu);
    if (atomic_load(&g_stop)) break;
    p->turn = 1 - s->me;
    p->rounds++;
    pthread_cond_signal(&p->cv);
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void* triple(void* arg) { return (void*)((long)arg * 3); }

static void* forker(void* arg) {
  int* bad = arg;
  for (int i = 0; i < kForks; i++) {
    pid_t c = fork();
    if (c < 0) {
      (*bad)++;
      continue;
    }
    if (c == 0) {
      pthread_t t[kChildThreads];
      long sum = 0;
      for (long k = 0; k < kChildThreads; k++)
        if (pthread_create(&t[k], NULL, triple, (void*)k) != 0) _exit(4);
      for (int k = 0; k < kChildThreads; k++) {
        void* r;
        if (pthread_join(t[k], &r) != 0) _exit(5);
        sum += (long)r;
      }
      _exit(sum == 3 * (0 + 1 + 2 + 3) ? 0 : 6);
    }
    int st = 0;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "fork_load: child %d ended with status 0x%x\n", i, st);
      (*bad)++;
    }
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  signal(SIGALRM, watchdog);
  alarm(kWatchdogSeconds);
  static struct Side side[2 * kPairs];
  pthread_t t[2 * kPairs];
  g_phase = 1;
  for (int i = 0; i < kPairs; i++) {
    pthread_mutex_init(&g_pair[i].mu, NULL);
    pthread_cond_init(&g_pair[i].cv, NULL);
    for (int k = 0; k < 2; k++) {
      side[2 * i + k] = (struct Side){&g_pair[i], k};
      if (pthread_create(&t[2 * i + k], NULL, ping, &side[2 * i + k]) != 0) return 1;
    }
  }
  g_phase = 2;
  int bad = 0;
  pthread_t f;
  if (pthread_create(&f, NULL, forker, &bad) != 0) return 1;
  pthread_join(f, NULL);
  /* Every pair must get to run while others do: wait (up to the watchdog)
   * until each has made a round, then stop them. */
  g_phase = 3;
  for (;;) {
    int idle = 0;
    for (int i = 0; i < kPairs; i++) {
      pthread_mutex_lock(&g_pair[i].mu);
      idle += g_pair[i].rounds == 0;
      pthread_mutex_unlock(&g_pair[i].mu);
    }
    if (idle == 0) break;
    usleep(1000);
  }
  g_phase = 4;
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kPairs; i++) {
    pthread_mutex_lock(&g_pair[i].mu);
    pthread_cond_broadcast(&g_pair[i].cv);
    pthread_mutex_unlock(&g_pair[i].mu);
  }
  for (int i = 0; i < 2 * kPairs; i++) pthread_join(t[i], NULL);
  alarm(0);
  printf("forks: %d, children failed: %d\n", kForks, bad);
  printf("every pair made rounds\n");
  return bad ? 1 : 0;
}
