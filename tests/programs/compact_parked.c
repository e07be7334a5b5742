/* compact_parked.c — threads parked for long keep every byte of their
 * frames and TLS while other threads read and write them, from user code
 * and through system calls.
 *
 * Under mnpthread, sysmon copies the pages of a G parked for 100 ms or more
 * (top frames, static TLS, TCB, G) out compactly and gives them back; any
 * touch brings them back (core/compact.h). Here 1,024 threads (more than
 * the 64 parked ones compaction waits for) each fill a local array and a
 * TLS array, publish their addresses and park, in rounds: a third in
 * nanosleep, a third on a condition variable, a third in sem_wait. Two
 * checker threads meanwhile pick parked threads at random, slowly (so
 * that most stay untouched long enough to be compacted), and under the
 * thread's mutex compare a word of each array with what it must hold and
 * write a new value: by a store, or by read(2) from a pipe into the
 * parked thread's array (a kernel write into a compacted page); they pause
 * for 300 ms of each round. Woken, a thread compares both arrays with what
 * the checkers recorded. Before the checkers start, the threads stay
 * untouched for 500 ms and RSS per parked thread is read (MNP-CHECK
 * kib_per_parked; under the shim it falls below one page once they are
 * compacted). A fork child of a thread reads a parked thread's
 * array (the prepare handler brings compacted pages back: the child has no
 * userfaultfd). Printed lines are the same natively and under the shim. */
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

#define NT 1024
#define WORDS 64
#define ROUNDS 3

struct slot {
  pthread_mutex_t mu;
  long* buf;
  long* tls;
  long expect[WORDS];
  long tls_expect[WORDS];
};

static struct slot g_slot[NT];
static __thread long t_words[WORDS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ready, g_round_cv = -1;
static sem_t g_sem[ROUNDS]; /* one per round: a woken thread must not take the next post */
static int g_stop, g_pause;
static long g_bad, g_checked, g_kernel_writes;
static int g_pipe[2][2]; /* one per checker */

static long pattern(int id, int k, int gen) { return ((long)id << 32) ^ ((long)k << 16) ^ (gen * 7919L) ^ 0x5a5a; }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static long rss_kib(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 0;
  long n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char* p = strstr(buf, "VmRSS:");
  return p ? atol(p + 6) : 0;
}

static void verify_locked(struct slot* s) {
  for (int k = 0; k < WORDS; k++) {
    if (s->buf[k] != s->expect[k]) __atomic_add_fetch(&g_bad, 1, __ATOMIC_RELAXED);
    if (s->tls[k] != s->tls_expect[k]) __atomic_add_fetch(&g_bad, 1, __ATOMIC_RELAXED);
  }
}

static void* parked(void* arg) {
  int id = (int)(intptr_t)arg;
  long buf[WORDS];
  struct slot* s = &g_slot[id];
  pthread_mutex_lock(&s->mu);
  for (int k = 0; k < WORDS; k++) {
    buf[k] = s->expect[k] = pattern(id, k, 0);
    t_words[k] = s->tls_expect[k] = pattern(id, k, 1);
  }
  s->buf = buf;
  s->tls = t_words;
  pthread_mutex_unlock(&s->mu);
  for (int r = 0; r < ROUNDS; r++) {
    pthread_mutex_lock(&g_mu);
    g_ready++;
    pthread_cond_broadcast(&g_cv);
    if (id % 3 == 1)
      while (g_round_cv < r) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    if (id % 3 == 0) sleep_ms((r == 0 ? 4000 : 700) + id % 7 * 10); /* round 0: past the RSS readings */
    else if (id % 3 == 2)
      while (sem_wait(&g_sem[r]) != 0) {
      }
    pthread_mutex_lock(&s->mu);
    verify_locked(s);
    pthread_mutex_unlock(&s->mu);
  }
  pthread_mutex_lock(&s->mu);
  s->buf = NULL; /* the frame ends */
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void* checker(void* arg) {
  unsigned seed = (unsigned)(intptr_t)arg;
  int* fds = g_pipe[seed - 1];
  long gen = 2;
  while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
    if (__atomic_load_n(&g_pause, __ATOMIC_ACQUIRE)) {
      usleep(1000);
      continue;
    }
    int id = (int)(rand_r(&seed) % NT);
    int k = (int)(rand_r(&seed) % WORDS);
    struct slot* s = &g_slot[id];
    pthread_mutex_lock(&s->mu);
    if (s->buf) {
      verify_locked(s);
      long v = pattern(id, k, (int)gen++);
      if (gen % 4 == 0) {
        /* The kernel writes into the parked thread's frame. */
        if (write(fds[1], &v, sizeof v) != sizeof v || read(fds[0], &s->buf[k], sizeof v) != sizeof v)
          __atomic_add_fetch(&g_bad, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g_kernel_writes, 1, __ATOMIC_RELAXED);
      } else {
        s->buf[k] = v;
      }
      s->expect[k] = v;
      s->tls[k] = s->tls_expect[k] = ~v;
      __atomic_add_fetch(&g_checked, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&s->mu);
    usleep(2000);
  }
  return NULL;
}

static void wait_ready(int want) {
  pthread_mutex_lock(&g_mu);
  while (g_ready < want) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
}

/* A fork child reads every parked thread's array (compacted or not). */
static int fork_reads(void) {
  pid_t pid = fork();
  if (pid == 0) {
    long bad = 0;
    for (int i = 0; i < NT; i++)
      if (g_slot[i].buf)
        for (int k = 0; k < WORDS; k++) bad += g_slot[i].buf[k] != g_slot[i].expect[k];
    _exit(bad ? 1 : 0);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
  mnp_report_shim();
  if (pipe(g_pipe[0]) != 0 || pipe(g_pipe[1]) != 0) return 1;
  for (int r = 0; r < ROUNDS; r++) sem_init(&g_sem[r], 0, 0);
  pthread_t t[NT], c[2];
  memset(g_slot, 0, sizeof g_slot); /* resident before the baseline */
  for (int i = 0; i < NT; i++) pthread_mutex_init(&g_slot[i].mu, NULL);
  long base = rss_kib();
  for (int i = 0; i < NT; i++)
    if (pthread_create(&t[i], NULL, parked, (void*)(intptr_t)i) != 0) return 1;
  /* Untouched: RSS per parked thread, read every 100 ms from 500 ms on
   * until it is below a page per thread (under the shim; up to 3 s, for a
   * loaded machine where sysmon comes late) — natively once. */
  wait_ready(NT);
  sleep_ms(500);
  long kib = rss_kib() - base;
  for (int i = 0; mnp_shim_loaded() && i < 25 && kib * 1000 / NT >= 3600; i++) {
    sleep_ms(100);
    long k = rss_kib() - base;
    if (k < kib) kib = k;
  }
  for (int i = 0; i < 2; i++) pthread_create(&c[i], NULL, checker, (void*)(intptr_t)(i + 1));
  int fork_ok = 1;
  for (int r = 0; r < ROUNDS; r++) {
    wait_ready(NT * (r + 1));
    sleep_ms(150);
    /* Checkers paused: the threads they did not touch get compacted. */
    __atomic_store_n(&g_pause, 1, __ATOMIC_RELEASE);
    sleep_ms(300);
    if (r == 1) fork_ok = fork_reads();
    __atomic_store_n(&g_pause, 0, __ATOMIC_RELEASE);
    sleep_ms(100);
    pthread_mutex_lock(&g_mu);
    g_round_cv = r;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    for (int i = 2; i < NT; i += 3) sem_post(&g_sem[r]);
  }
  for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
  mnp_check("kib_per_parked", kib * 1000 / NT); /* thousandths of a KiB */
  mnp_check("checked", g_checked);
  mnp_check("kernel_writes", g_kernel_writes);
  printf("mismatches %ld\n", g_bad);
  printf("fork child read %s\n", fork_ok ? "ok" : "wrong");
  return g_bad != 0 || !fork_ok;
}
