/* handoff_starve — a hand-off ping-pong pair must not starve a sleeper.
 *
 * Two threads pass one token back and forth; main sleeps 200 ms meanwhile,
 * then stops them. MODE (argv[1]) is how the token moves:
 *   sem   each side posts the other's semaphore and waits on its own
 *   cond  one mutex, a `turn` word and a condvar per side
 *
 * The interleaving this reproduces (issue 8, item 2), at MNP_PROCS=1: A
 * readies B (B goes to the P's runnext slot) and parks; the park hands the
 * P straight to B, which readies A and parks, and so on. No G ever reaches
 * the scheduler loop, so the P's due timers were never run and main's sleep
 * never ended; and each hand-off advanced the P's schedtick, so to sysmon the
 * P looked like it was switching normally and it never ended the pair's time
 * slice. Natively main wakes after 200 ms.
 *
 * Output (stdout) is deterministic: "main woke", whether the pair ran, and
 * "stopped". The time main slept goes to stderr as MNP-CHECK main_sleep_ms
 * (the runner bounds it). A watchdog (alarm, 5 s) prints a line and exits 3
 * when main never wakes. */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static long rounds[2];

/* ---- sem: the token is a post ---- */
static sem_t sems[2];

static void* sem_side(void* arg) {
  int me = (int)(long)arg;
  for (;;) {
    sem_wait(&sems[me]);
    if (atomic_load(&stop)) {
      sem_post(&sems[1 - me]); /* let the other side see stop too */
      return NULL;
    }
    rounds[me]++;
    sem_post(&sems[1 - me]);
  }
}

/* ---- cond: the token is `turn` ---- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cvs[2] = {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};
static int turn;

static void* cond_side(void* arg) {
  int me = (int)(long)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (turn != me && !atomic_load(&stop)) pthread_cond_wait(&cvs[me], &mu);
    if (atomic_load(&stop)) {
      pthread_cond_signal(&cvs[1 - me]);
      break;
    }
    rounds[me]++;
    turn = 1 - me;
    pthread_cond_signal(&cvs[1 - me]);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: main did not wake within 5 s\n";
  write(1, msg, sizeof msg - 1);
  _exit(3);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  const char* mode = argc > 1 ? argv[1] : "sem";
  int use_sem = strcmp(mode, "cond") != 0;
  signal(SIGALRM, watchdog);
  alarm(5);

  pthread_t t[2];
  if (use_sem) {
    sem_init(&sems[0], 0, 0);
    sem_init(&sems[1], 0, 0);
  }
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, use_sem ? sem_side : cond_side, (void*)i);
  if (use_sem) sem_post(&sems[0]); /* the token starts with side 0 */

  double t0 = now_ms();
  usleep(200 * 1000);
  double slept = now_ms() - t0;
  printf("%s: main woke\n", mode);
  fflush(stdout);
  mnp_check("main_sleep_ms", (long long)slept);

  atomic_store(&stop, 1);
  if (!use_sem) {
    pthread_mutex_lock(&mu);
    pthread_cond_signal(&cvs[0]);
    pthread_cond_signal(&cvs[1]);
    pthread_mutex_unlock(&mu);
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  alarm(0);
  printf("%s: pair ran: %s\n", mode, rounds[0] > 0 && rounds[1] > 0 ? "yes" : "no");
  printf("%s: stopped\n", mode);
  return 0;
}
