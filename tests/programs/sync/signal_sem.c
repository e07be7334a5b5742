/* signal_sem — a signal handler that posts a semaphore and takes and drops
 * a mutex, run 2,000 times in a row on one thread (pthread_kill from main).
 *
 * Regression (issue 8, item 6.3): the program hung. Under the shim the
 * handler runs on whichever kernel thread (M) the signal reaches, and it
 * can reach an M in the middle of the runtime: a G inside sema_wait (or
 * the scheduler itself) holding a wait-table bucket lock. The handler's
 * sem_post then wants that same lock on the same kernel thread and sleeps
 * on it forever. Here main waits on the semaphore the handler posts, so a
 * signal aimed at the worker is often delivered (process-directed, the
 * worker not running) to main's M while main is in sem_wait.
 *
 * Phase 1: 2,000 × {pthread_kill(worker, SIGUSR1); sem_wait(ack)}, the
 * worker meanwhile locking and unlocking the handler's mutex and posting
 * and waiting its own semaphore. Phase 2: 2,000 kills with no wait between
 * them (standard signals may merge: only "at least one" is printed). A
 * watchdog (alarm) reports a hang and exits 3. */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include "sync_util.h"

enum { kKills = 2000, kWatchdogSeconds = 40 };

static sem_t g_ack;
static sem_t g_own;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_handled;
static atomic_int g_locked_in_handler;
static atomic_int g_stop;
static volatile sig_atomic_t g_phase;

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "signal_sem: watchdog: hang in phase ";
  char c[3] = {(char)('0' + g_phase), '\n', 0};
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, c, 2);
  _exit(3);
}

static void on_usr1(int sig) {
  (void)sig;
  if (pthread_mutex_trylock(&g_mu) == 0) {
    atomic_fetch_add(&g_locked_in_handler, 1);
    pthread_mutex_unlock(&g_mu);
  }
  atomic_fetch_add(&g_handled, 1);
  sem_post(&g_ack);
}

/* Keeps its M busy in the runtime: short timed waits (park, timers, the M
 * going idle and coming back) between uses of the handler's mutex. */
static void* worker(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    pthread_mutex_lock(&g_mu);
    pthread_mutex_unlock(&g_mu);
    struct timespec ts = deadline_ms(CLOCK_REALTIME, 0);
    ts.tv_nsec += 20000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    sem_timedwait(&g_own, &ts);
  }
  return NULL;
}

/* Waits, again and again, on the semaphore its own handler posts: a
 * signal aimed at it while it runs lands on its M, often inside its
 * sem_wait with the semaphore's bucket lock held. */
static sem_t g_self;
static atomic_int g_self_wakes;
static void on_usr2(int sig) {
  (void)sig;
  if (pthread_mutex_trylock(&g_mu) == 0) pthread_mutex_unlock(&g_mu);
  sem_post(&g_self);
}
static void* self_waiter(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    if (sem_wait(&g_self) == 0) atomic_fetch_add(&g_self_wakes, 1);
  }
  return NULL;
}

static void wait_ack(void) {
  while (sem_wait(&g_ack) != 0) SYNC_CHECK(errno == EINTR);
}

int main(void) {
  mnp_report_shim();
  signal(SIGALRM, watchdog);
  alarm(kWatchdogSeconds);
  SYNC_CHECK(sem_init(&g_ack, 0, 0) == 0);
  SYNC_CHECK(sem_init(&g_own, 0, 0) == 0);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  SYNC_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
  SYNC_CHECK(sem_init(&g_self, 0, 0) == 0);
  sa.sa_handler = on_usr2;
  SYNC_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
  pthread_t self;
  SYNC_CHECK(pthread_create(&self, NULL, self_waiter, NULL) == 0);
  g_phase = 0;
  for (int i = 0; i < kKills; i++) SYNC_CHECK(pthread_kill(self, SIGUSR2) == 0);
  /* With one CPU (or one P) it may not have run yet: let it take a post. */
  sem_post(&g_self);
  while (atomic_load(&g_self_wakes) == 0) sched_yield();
  atomic_store(&g_stop, 1);
  sem_post(&g_self);
  SYNC_CHECK(pthread_join(self, NULL) == 0);
  atomic_store(&g_stop, 0);
  printf("phase 0: woken at least once=%s\n", atomic_load(&g_self_wakes) >= 1 ? "yes" : "no");

  pthread_t t, busy;
  SYNC_CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
  SYNC_CHECK(pthread_create(&busy, NULL, worker, NULL) == 0);

  g_phase = 1;
  for (int i = 0; i < kKills; i++) {
    SYNC_CHECK(pthread_kill(t, SIGUSR1) == 0);
    wait_ack();
  }
  printf("phase 1: handled=%d\n", atomic_load(&g_handled));
  SYNC_CHECK(atomic_load(&g_handled) == kKills);

  g_phase = 2;
  atomic_store(&g_handled, 0);
  for (int i = 0; i < kKills; i++) SYNC_CHECK(pthread_kill(t, SIGUSR1) == 0);
  wait_ack();
  while (sem_trywait(&g_ack) == 0) {
  }
  printf("phase 2: handled at least once=%s\n", atomic_load(&g_handled) >= 1 ? "yes" : "no");

  g_phase = 3;
  atomic_store(&g_stop, 1);
  SYNC_CHECK(pthread_join(t, NULL) == 0);
  SYNC_CHECK(pthread_join(busy, NULL) == 0);
  alarm(0);
  return sync_finish("signal_sem");
}
