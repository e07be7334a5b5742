/* pshared — process-shared synchronisation objects between a parent and
 * its forked children (issue 9: multiprocessing.Lock in a child stayed
 * blocked after the parent released it).
 *
 * Every object lives in one MAP_SHARED anonymous mapping made before the
 * forks; each process runs two threads, so a waiter may be woken by a thread
 * of its own process or of another one, and a thread of one process waits
 * while threads of another hold the object:
 *   sem_mutex    sem_init(pshared 1) used as a lock by 3 processes x 2 threads
 *   sem_pingpong a pshared sem pair, parent <-> child, 2,000 round trips
 *   named_sem    a sem_open pair (the child opens it by name), 1,000 rounds
 *   mutex        PTHREAD_PROCESS_SHARED mutex, 3 processes x 2 threads
 *   cond         pshared mutex + cond ping-pong, parent <-> child
 *   rwlock       pshared rwlock: 2 writer children, readers in the parent
 *   barrier      pshared barrier of 3 processes, 300 rounds
 *   futex        syscall(SYS_futex) WAIT/WAKE without FUTEX_PRIVATE_FLAG
 *   progress     a child thread blocked on a pshared sem while another
 *                thread of that child keeps counting (the parent posts only
 *                once it saw the count move: a wait that held the child's
 *                only P would hang here)
 *   robust       a robust pshared mutex whose owner (a child's main thread,
 *                then a child thread that exits) is gone: the parent's lock
 *                gets EOWNERDEAD
 * The interleaving that failed: glibc marks a shared semaphore with 128 in
 * its `private` field; the shim read 128 as "private" and parked the child's
 * sem_wait in its own per-process wait table, where the parent's sem_post (a
 * shared FUTEX_WAKE in the kernel) never arrives.  A lost wake-up hangs:
 * alarm() ends the run (SIGALRM, a different end than the native run).
 * stdout: one deterministic line per section. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kLockIters = 2000, kRounds = 2000, kNamedRounds = 1000, kBarrierRounds = 300 };

struct Shared {
  sem_t sem_lock;
  sem_t ping, pong;
  sem_t progress_sem;
  pthread_mutex_t mu;
  pthread_mutex_t cmu;
  pthread_cond_t cv;
  pthread_rwlock_t rw;
  pthread_barrier_t bar;
  pthread_mutex_t robust;
  long counter;
  int inside;
  int violations;
  int turn;
  long rw_a, rw_b;
  atomic_int serial;
  atomic_uint fword;
  atomic_long progress;
  atomic_int waiting;
  atomic_int stop;
  atomic_int go;
};

static struct Shared* sh;
static int failures;

static void fail(const char* what) {
  printf("FAIL %s\n", what);
  fflush(stdout);
  failures++;
}

/* Forks a child that runs fn and exits with its result. */
static pid_t spawn(int (*fn)(void)) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(2);
  }
  if (p == 0) _exit(fn());
  return p;
}

static int reap(pid_t p) {
  int st;
  if (waitpid(p, &st, 0) != p) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs fn on two threads of this process and waits for both. */
static void two_threads(void* (*fn)(void*)) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, fn, NULL);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* Critical section body shared by the lock sections: inside must be 0. */
static void critical(void) {
  if (sh->inside++ != 0) sh->violations++;
  sh->counter++;
  if (sh->counter % 64 == 0) sched_yield();
  sh->inside--;
}

/* ---- sem_mutex ---- */
static void* sem_locker(void* arg) {
  (void)arg;
  for (int i = 0; i < kLockIters; i++) {
    while (sem_wait(&sh->sem_lock) != 0) {
    }
    critical();
    sem_post(&sh->sem_lock);
  }
  return NULL;
}
static int sem_lock_proc(void) {
  two_threads(sem_locker);
  return 0;
}

/* ---- sem_pingpong ---- */
static int pong_proc(void) {
  for (int i = 0; i < kRounds; i++) {
    while (sem_wait(&sh->ping) != 0) {
    }
    sem_post(&sh->pong);
  }
  return 0;
}

/* ---- named_sem ---- */
static char name_a[64], name_b[64];
static int named_child(void) {
  sem_t* a = sem_open(name_a, 0);
  sem_t* b = sem_open(name_b, 0);
  if (a == SEM_FAILED || b == SEM_FAILED) return 3;
  for (int i = 0; i < kNamedRounds; i++) {
    while (sem_wait(a) != 0) {
    }
    sem_post(b);
  }
  sem_close(a);
  sem_close(b);
  return 0;
}

/* ---- mutex ---- */
static void* mutex_locker(void* arg) {
  (void)arg;
  for (int i = 0; i < kLockIters; i++) {
    pthread_mutex_lock(&sh->mu);
    critical();
    pthread_mutex_unlock(&sh->mu);
  }
  return NULL;
}
static int mutex_proc(void) {
  two_threads(mutex_locker);
  return 0;
}

/* ---- cond: turn 0 = parent, 1 = child ---- */
static int cond_side(int me) {
  for (int i = 0; i < kRounds; i++) {
    pthread_mutex_lock(&sh->cmu);
    while (sh->turn != me) pthread_cond_wait(&sh->cv, &sh->cmu);
    sh->turn = 1 - me;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->cmu);
  }
  return 0;
}
static int cond_child(void) { return cond_side(1); }

/* ---- rwlock ---- */
static void* rw_writer(void* arg) {
  (void)arg;
  for (int i = 0; i < kLockIters / 2; i++) {
    pthread_rwlock_wrlock(&sh->rw);
    sh->rw_a++;
    if (i % 32 == 0) sched_yield();
    sh->rw_b++;
    pthread_rwlock_unlock(&sh->rw);
  }
  return NULL;
}
static int rw_writer_proc(void) {
  two_threads(rw_writer);
  return 0;
}
static void* rw_reader(void* arg) {
  (void)arg;
  for (int i = 0; i < kLockIters; i++) {
    pthread_rwlock_rdlock(&sh->rw);
    if (sh->rw_a != sh->rw_b) __atomic_fetch_add(&sh->violations, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&sh->rw);
  }
  return NULL;
}

/* ---- barrier ---- */
static int barrier_proc(void) {
  for (int i = 0; i < kBarrierRounds; i++)
    if (pthread_barrier_wait(&sh->bar) == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&sh->serial, 1);
  return 0;
}

/* ---- futex: fword is the number of the next half-round ---- */
static long sfutex(atomic_uint* w, int op, unsigned val) {
  return syscall(SYS_futex, (unsigned*)w, op, val, NULL, NULL, 0);
}
static int futex_side(unsigned me) {
  for (unsigned i = 0; i < kRounds; i++) {
    unsigned want = 2 * i + me;
    unsigned v;
    while ((v = atomic_load(&sh->fword)) != want) sfutex(&sh->fword, FUTEX_WAIT, v);
    atomic_store(&sh->fword, want + 1);
    sfutex(&sh->fword, FUTEX_WAKE, 1);
  }
  return 0;
}
static int futex_child(void) { return futex_side(1); }

/* ---- progress ---- */
static void* counter_thread(void* arg) {
  (void)arg;
  while (!atomic_load(&sh->stop)) {
    atomic_fetch_add(&sh->progress, 1);
    usleep(100);
  }
  return NULL;
}
static int progress_child(void) {
  pthread_t t;
  pthread_create(&t, NULL, counter_thread, NULL);
  atomic_store(&sh->waiting, 1);
  while (sem_wait(&sh->progress_sem) != 0) {
  }
  atomic_store(&sh->stop, 1);
  pthread_join(t, NULL);
  return 0;
}

/* ---- robust ---- */
static int robust_main_child(void) {
  if (pthread_mutex_lock(&sh->robust) != 0) return 3;
  return 0; /* exits holding it */
}
static void* robust_locker(void* arg) {
  (void)arg;
  pthread_mutex_lock(&sh->robust);
  return NULL; /* the thread ends holding it */
}
static int robust_thread_child(void) {
  pthread_t t;
  pthread_create(&t, NULL, robust_locker, NULL);
  pthread_join(t, NULL);
  atomic_store(&sh->go, 1);
  /* Stay alive until the parent got the mutex: only the thread died. */
  while (atomic_load(&sh->go) != 2) usleep(1000);
  return 0;
}

static void robust_take(const char* who) {
  int r = pthread_mutex_lock(&sh->robust);
  printf("robust %s: %s\n", who, r == EOWNERDEAD ? "EOWNERDEAD" : r == 0 ? "0" : strerror(r));
  if (r != EOWNERDEAD) fail("robust: expected EOWNERDEAD");
  if (r == EOWNERDEAD) pthread_mutex_consistent(&sh->robust);
  if (r == 0 || r == EOWNERDEAD) pthread_mutex_unlock(&sh->robust);
}

int main(void) {
  mnp_report_shim();
  alarm(60); /* a lost wake-up ends the run with SIGALRM */
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return 2;

  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
  pthread_barrierattr_t ba;
  pthread_barrierattr_init(&ba);
  pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);

  /* sem_mutex */
  sem_init(&sh->sem_lock, 1, 1);
  pid_t c1 = spawn(sem_lock_proc), c2 = spawn(sem_lock_proc);
  two_threads(sem_locker);
  int bad = reap(c1) | reap(c2);
  printf("sem_mutex: count=%ld violations=%d children=%d\n", sh->counter, sh->violations, bad);

  /* sem_pingpong */
  sem_init(&sh->ping, 1, 0);
  sem_init(&sh->pong, 1, 0);
  c1 = spawn(pong_proc);
  int rounds = 0;
  for (int i = 0; i < kRounds; i++) {
    sem_post(&sh->ping);
    while (sem_wait(&sh->pong) != 0) {
    }
    rounds++;
  }
  printf("sem_pingpong: rounds=%d child=%d\n", rounds, reap(c1));

  /* named_sem */
  snprintf(name_a, sizeof name_a, "/mnp_pshared_a_%d", (int)getpid());
  snprintf(name_b, sizeof name_b, "/mnp_pshared_b_%d", (int)getpid());
  sem_t* na = sem_open(name_a, O_CREAT | O_EXCL, 0600, 0);
  sem_t* nb = sem_open(name_b, O_CREAT | O_EXCL, 0600, 0);
  if (na == SEM_FAILED || nb == SEM_FAILED) {
    perror("sem_open");
    return 2;
  }
  c1 = spawn(named_child);
  rounds = 0;
  for (int i = 0; i < kNamedRounds; i++) {
    sem_post(na);
    while (sem_wait(nb) != 0) {
    }
    rounds++;
  }
  printf("named_sem: rounds=%d child=%d\n", rounds, reap(c1));
  sem_unlink(name_a);
  sem_unlink(name_b);

  /* mutex */
  sh->counter = 0;
  pthread_mutex_init(&sh->mu, &ma);
  c1 = spawn(mutex_proc);
  c2 = spawn(mutex_proc);
  two_threads(mutex_locker);
  bad = reap(c1) | reap(c2);
  printf("mutex: count=%ld violations=%d children=%d\n", sh->counter, sh->violations, bad);

  /* cond */
  pthread_mutex_init(&sh->cmu, &ma);
  pthread_cond_init(&sh->cv, &ca);
  c1 = spawn(cond_child);
  cond_side(0);
  printf("cond: turn=%d child=%d\n", sh->turn, reap(c1));

  /* rwlock */
  pthread_rwlock_init(&sh->rw, &ra);
  c1 = spawn(rw_writer_proc);
  c2 = spawn(rw_writer_proc);
  two_threads(rw_reader);
  bad = reap(c1) | reap(c2);
  printf("rwlock: a=%ld b=%ld violations=%d children=%d\n", sh->rw_a, sh->rw_b, sh->violations, bad);

  /* barrier */
  pthread_barrier_init(&sh->bar, &ba, 3);
  c1 = spawn(barrier_proc);
  c2 = spawn(barrier_proc);
  barrier_proc();
  bad = reap(c1) | reap(c2);
  printf("barrier: serial=%d children=%d\n", atomic_load(&sh->serial), bad);

  /* futex */
  c1 = spawn(futex_child);
  futex_side(0);
  printf("futex: word=%u child=%d\n", atomic_load(&sh->fword), reap(c1));

  /* progress */
  sem_init(&sh->progress_sem, 1, 0);
  c1 = spawn(progress_child);
  while (!atomic_load(&sh->waiting)) usleep(1000);
  usleep(20000); /* let the child's thread reach sem_wait */
  long p0 = atomic_load(&sh->progress);
  while (atomic_load(&sh->progress) < p0 + 50) usleep(1000);
  sem_post(&sh->progress_sem);
  printf("progress: counted while blocked, child=%d\n", reap(c1));

  /* robust */
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&sh->robust, &ma);
  c1 = spawn(robust_main_child);
  int rc = reap(c1);
  robust_take(rc == 0 ? "owner process exited" : "child failed");
  c1 = spawn(robust_thread_child);
  while (atomic_load(&sh->go) != 1) usleep(1000);
  robust_take("owner thread exited");
  atomic_store(&sh->go, 2);
  printf("robust: child=%d\n", reap(c1));

  if (sh->violations) fail("mutual exclusion");
  return failures ? 1 : 0;
}
