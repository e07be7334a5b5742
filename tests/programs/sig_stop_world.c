/* sig_stop_world — a stop-the-world collector made the way Boehm GC makes
 * one (its pthread_stop_world.c protocol, written again here): main sends
 * each worker SIGPWR, whose handler acknowledges on a semaphore and waits
 * in sigsuspend for SIGXCPU, then acknowledges again; main resends to a
 * worker that has not answered after 10 ms and counts a pthread_kill that
 * says ESRCH as a thread gone, as Boehm does. The workers compute, take a
 * contended mutex, sleep, wait 300 us in semtimedop and make short system
 * calls, so the signals find them running, parked and inside wrapped calls.
 *
 * Under the runtime a pthread_kill to a G in sigsuspend went by tgkill to
 * the M it ran on; a G between its wait flag and its kernel call may have
 * left that M, and the restart went to no M (ESRCH) or to the wrong one:
 * the worker slept on in sigsuspend and Guile (Boehm GC) aborted with
 * "Signals delivery fails constantly", about 1 run in 2 at MNP_PROCS=1.
 *
 * Checks: esrch (pthread_kill saying ESRCH for a live thread: must be 0)
 * and stuck (cycles that needed more than 10 s of resends: must be 0).
 * stdout: the number of cycles and of acknowledgements. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kWorkers = 8, kCycles = 30 };

static pthread_t workers[kWorkers];
static _Atomic unsigned long last_stop[kWorkers];
static _Atomic unsigned long stop_count;
static atomic_int world_stopped, quit;
static sem_t acks;
static sigset_t suspend_mask;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long sink;
static int semid;

static int self_index(void) {
  pthread_t me = pthread_self();
  for (int i = 0; i < kWorkers; i++)
    if (pthread_equal(workers[i], me)) return i;
  return -1;
}

static void on_suspend(int sig) {
  (void)sig;
  int saved = errno;
  unsigned long my = atomic_load(&stop_count);
  int i = self_index();
  if (i < 0 || (atomic_load(&last_stop[i]) & ~1UL) == my) {  // not ours, or a resent duplicate
    errno = saved;
    return;
  }
  sem_post(&acks);
  atomic_store(&last_stop[i], my);
  do sigsuspend(&suspend_mask);
  while (atomic_load(&world_stopped) && atomic_load(&stop_count) == my);
  sem_post(&acks);
  atomic_store(&last_stop[i], my | 1);
  errno = saved;
}

static void on_restart(int sig) { (void)sig; }

static void* worker(void* arg) {
  long id = (long)arg;
  unsigned long x = (unsigned long)id + 1;
  while (!atomic_load(&quit)) {
    for (int k = 0; k < 2000; k++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
    pthread_mutex_lock(&mu);
    sink += x;
    pthread_mutex_unlock(&mu);
    switch (x % 4) {
      case 0:
        usleep(50);
        break;
      case 1: {  // 300 us in the kernel, a wrapped call (the G is in a system call)
        struct sembuf op = {0, -1, 0};
        struct timespec ts = {0, 300000};
        semtimedop(semid, &op, 1, &ts);
        break;
      }
      case 2:
        waitpid(-1, NULL, WNOHANG);
        break;
      default:
        getppid();
        break;
    }
  }
  return NULL;
}

static long esrch, stuck, acked;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Sends sig to every worker whose last_stop is not `want`; returns how many.
static int send_all(int sig, unsigned long want) {
  int n = 0;
  for (int i = 0; i < kWorkers; i++) {
    if (atomic_load(&last_stop[i]) == want) continue;
    int r = pthread_kill(workers[i], sig);
    if (r == ESRCH) esrch++;  // Boehm: "not really there anymore"
    else if (r == 0) n++;
    else {
      fprintf(stderr, "pthread_kill: %d\n", r);
      exit(1);
    }
  }
  return n;
}

// Boehm's wait: up to n acknowledgements within 10 ms, then a resend every
// 10 ms to whoever has not answered.
static void wait_acks(int n, int sig, unsigned long want) {
  double start = now_s();
  int got = 0;
  while (got < n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) ts.tv_nsec -= 1000000000, ts.tv_sec++;
    if (sem_timedwait(&acks, &ts) == 0) {
      got++;
      acked++;
      continue;
    }
    if (now_s() - start > 10.0) {
      stuck++;
      fprintf(stderr, "cycle stuck: %d of %d answered\n", got, n);
      mnp_check("esrch", esrch);
      mnp_check("stuck", stuck);
      semctl(semid, 0, IPC_RMID);
      exit(1);
    }
    // Whoever has not answered yet: its count is not `want`.
    int resent = send_all(sig, want);
    if (resent < n - got) n = got + resent;  // counted gone, as Boehm does
  }
}

int main(void) {
  mnp_report_shim();
  sem_init(&acks, 0, 0);
  semid = semget(IPC_PRIVATE, 1, 0600);  // value 0: a decrement waits for its timeout
  if (semid < 0) return 1;
  sigfillset(&suspend_mask);
  int allowed[] = {SIGINT, SIGQUIT, SIGABRT, SIGTERM, SIGSEGV, SIGBUS, SIGXCPU};
  for (unsigned i = 0; i < sizeof allowed / sizeof *allowed; i++) sigdelset(&suspend_mask, allowed[i]);
  struct sigaction sa = {0};
  sa.sa_handler = on_suspend;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  for (int i = 0; i < 6; i++) sigdelset(&sa.sa_mask, allowed[i]);
  sigaction(SIGPWR, &sa, NULL);
  sa.sa_handler = on_restart;
  sigaction(SIGXCPU, &sa, NULL);
  for (long i = 0; i < kWorkers; i++) pthread_create(&workers[i], NULL, worker, (void*)i);
  for (int c = 0; c < kCycles; c++) {
    unsigned long sc = atomic_load(&stop_count) + 2;
    atomic_store(&stop_count, sc);
    atomic_store(&world_stopped, 1);
    wait_acks(send_all(SIGPWR, sc), SIGPWR, sc);
    atomic_store(&world_stopped, 0);
    wait_acks(send_all(SIGXCPU, sc | 1), SIGXCPU, sc | 1);
    usleep(200);
  }
  atomic_store(&quit, 1);
  for (int i = 0; i < kWorkers; i++) pthread_join(workers[i], NULL);
  semctl(semid, 0, IPC_RMID);
  mnp_check("esrch", esrch);
  mnp_check("stuck", stuck);
  printf("cycles %d\n", kCycles);
  return 0;
}
