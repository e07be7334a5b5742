/* sig_on_g — the program's signal handlers run only on its own threads.
 *
 * Every program thread sets a pthread key (perl keeps its interpreter in one
 * and its SIGCHLD handler reads it). Handlers for SIGCHLD and SIGUSR1 check
 * that the key is set on the thread they run on. Interleaving this
 * reproduces (GNU parallel under the shim): main sleeps in usleep waiting for
 * a signal, every worker is parked too (usleep, read on an empty pipe,
 * sem_wait) or computing, so the kernel thread that main ran on is idle; the
 * kernel gives the process-directed signal to that idle M (or to sysmon),
 * whose TLS is no program thread's, and the handler found the key NULL.
 *
 *   (a) 200 children that _exit at once, each reaped with waitpid: SIGCHLD
 *       handler (SA_SIGINFO) on a program thread, si_signo right;
 *   (b) 200 x kill(getpid(), SIGUSR1), each followed by waiting (usleep)
 *       until the handler has run (signals coalesce: counts are >= 1 each
 *       round, not exact);
 *   (c) sem_post from a handler wakes a thread in sem_wait while every
 *       thread is parked (the handler must still run somewhere).
 * stdout: fixed lines; a failure prints "not ok" and exits 1. SIGALRM after
 * 60 s (default action) kills a hung run. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kChildren = 200, kKills = 200 };

static pthread_key_t g_key;
static atomic_int g_bad;     /* handler ran where the key is NULL */
static atomic_int g_chld;    /* SIGCHLD deliveries */
static atomic_int g_usr1;    /* SIGUSR1 deliveries */
static atomic_int g_badinfo; /* siginfo with a wrong si_signo */
static atomic_int g_stop;
static sem_t g_sem_worker; /* worker (sem) waits on it */
static sem_t g_sem_main;   /* posted by the SIGUSR2 handler */
static int g_pipe[2];

static void check_thread(int sig, const siginfo_t* si) {
  if (pthread_getspecific(g_key) == NULL) atomic_fetch_add(&g_bad, 1);
  if (si && si->si_signo != sig) atomic_fetch_add(&g_badinfo, 1);
}

static void on_chld(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  check_thread(sig, si);
  atomic_fetch_add(&g_chld, 1);
}

static void on_usr1(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  check_thread(sig, si);
  atomic_fetch_add(&g_usr1, 1);
}

static void on_usr2(int sig) {
  check_thread(sig, NULL);
  sem_post(&g_sem_main);
}

static atomic_int g_marked;
static void mark_thread(long id) {
  pthread_setspecific(g_key, (void*)(id + 1));
  atomic_fetch_add(&g_marked, 1);
}

static void* sleeper(void* a) {
  mark_thread((long)a);
  while (!atomic_load(&g_stop)) usleep(2000);
  return NULL;
}

static void* reader(void* a) {
  mark_thread((long)a);
  char c;
  for (;;) {
    ssize_t n = read(g_pipe[0], &c, 1);
    if (n == 1 || (n < 0 && errno != EINTR)) break;
  }
  return NULL;
}

static void* sem_waiter(void* a) {
  mark_thread((long)a);
  while (sem_wait(&g_sem_worker) != 0) {
  }
  return NULL;
}

static void* computer(void* a) {
  mark_thread((long)a);
  volatile unsigned long x = 0;
  while (!atomic_load(&g_stop))
    for (int i = 0; i < 100000; i++) x += (unsigned long)i;
  (void)x;
  return NULL;
}

static void install(int sig, void (*fn)(int, siginfo_t*, void*)) {
  struct sigaction sa = {0};
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) {
    perror("sigaction");
    exit(1);
  }
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  pthread_key_create(&g_key, NULL);
  mark_thread(0);
  sem_init(&g_sem_worker, 0, 0);
  sem_init(&g_sem_main, 0, 0);
  if (pipe(g_pipe) != 0) return 1;
  install(SIGCHLD, on_chld);
  install(SIGUSR1, on_usr1);
  signal(SIGUSR2, on_usr2);

  void* (*fns[])(void*) = {sleeper, reader, sem_waiter, computer};
  pthread_t th[4];
  for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, fns[i], (void*)(i + 1));
  /* A thread that has not set its key yet is a program thread all the
   * same: signal only once every one has (at 1 P the last worker may not
   * have run at all when the first SIGCHLD comes). */
  while (atomic_load(&g_marked) < 5) usleep(1000);

  /* (a) */
  for (int i = 0; i < kChildren; i++) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) {
      perror("fork");
      return 1;
    }
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  /* The last SIGCHLD may still be on its way. */
  for (int i = 0; i < 5000 && atomic_load(&g_chld) == 0; i++) usleep(1000);

  /* (b) */
  int missed = 0;
  for (int i = 0; i < kKills; i++) {
    int before = atomic_load(&g_usr1);
    kill(getpid(), SIGUSR1);
    int waited = 0;
    while (atomic_load(&g_usr1) == before && waited < 5000) {
      usleep(200);
      waited++;
    }
    if (atomic_load(&g_usr1) == before) missed++;
  }

  /* (c) the computer stops so that every worker is parked or sleeping. */
  atomic_store(&g_stop, 1);
  pthread_join(th[3], NULL);
  pthread_join(th[0], NULL);
  kill(getpid(), SIGUSR2);
  while (sem_wait(&g_sem_main) != 0) {
  }

  sem_post(&g_sem_worker);
  if (write(g_pipe[1], "x", 1) != 1) return 1;
  pthread_join(th[1], NULL);
  pthread_join(th[2], NULL);

  int bad = atomic_load(&g_bad), badinfo = atomic_load(&g_badinfo);
  printf("sigchld handled: %s\n", atomic_load(&g_chld) > 0 ? "yes" : "no");
  printf("sigusr1 seen every round: %s\n", missed == 0 ? "yes" : "no");
  printf("handlers off a program thread: %d\n", bad);
  printf("wrong si_signo: %d\n", badinfo);
  int ok = bad == 0 && badinfo == 0 && missed == 0 && atomic_load(&g_chld) > 0;
  printf("sig_on_g: %s\n", ok ? "ok" : "not ok");
  if (!ok) fprintf(stderr, "FAIL: bad=%d badinfo=%d missed=%d chld=%d\n", bad, badinfo, missed, atomic_load(&g_chld));
  return ok ? 0 : 1;
}
