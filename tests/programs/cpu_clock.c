/* cpu_clock.c — every thread's CPU clock measures that thread alone.
 *
 * Scenarios:
 *   - main burns 200 ms of CPU, then creates a thread: the new thread's
 *     CLOCK_THREAD_CPUTIME_ID at its first instruction is near 0. (Under
 *     mnpthread it once read its kernel thread's clock: 107 ms and more.)
 *   - two threads each burn until their own clock says 100 ms (at 1 P they
 *     share one kernel thread): afterwards main reads each one's clock through
 *     pthread_getcpuclockid and finds 100 ms, not the sum; getrusage
 *     (RUSAGE_THREAD) in each agrees with its clock.
 *   - clock_nanosleep on a burner's clock returns once that thread used the
 *     time; on the caller's own clock it is EINVAL; clock_getres of a thread
 *     clock is 1 ns.
 *   - a finished thread: pthread_getcpuclockid ESRCH before the join,
 *     clock_gettime on its old clock EINVAL after it.
 *   - main's own clock counts its burn.
 *   - two threads hand a turn back and forth 1,500 times through
 *     semaphores, one doing ten times the other's work per turn (at 1 P,
 *     thousands of switches on one kernel thread, each credited from an
 *     estimate of that thread's clock): the busier one's clock is 2.5 to 20
 *     times the other's, and the two together are less than twice the
 *     process's CPU time in that stretch and at least a third of it (the
 *     estimate may count time its kernel thread waited for a CPU, as the
 *     burners' bound allows).
 * Nothing timed is printed, only relations with generous margins. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

#define MS 1000000LL

static long long ns_of(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static long long clock_ns(clockid_t c) {
  struct timespec t;
  if (clock_gettime(c, &t) != 0) return -1;
  return ns_of(t);
}

static void burn_until(long long ns) {
  while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < ns) {
    for (volatile int i = 0; i < 1000; i++) {
    }
  }
}

static const char* yesno(int c) { return c ? "yes" : "no"; }

static long long g_first;
static void* late(void* arg) {
  (void)arg;
  g_first = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

struct burner {
  pthread_t t;
  long long own_end;   /* its own clock when it finished burning */
  long long rusage_ns; /* utime + stime then */
  volatile int done;   /* burnt its 100 ms */
  volatile int may_exit;
};

static void* burner_main(void* arg) {
  struct burner* b = arg;
  burn_until(100 * MS);
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  b->own_end = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  b->rusage_ns =
      (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
  b->done = 1;
  while (!b->may_exit) usleep(1000);
  return NULL;
}

static volatile int g_spin_stop;
static void* spinner(void* arg) {
  (void)arg;
  while (!g_spin_stop) {
  }
  return NULL;
}

static void* quick(void* arg) { return arg; }

/* Ping-pong: each turn spins for `work` loop rounds. */
struct turner {
  sem_t* mine;
  sem_t* other;
  int work;
  long long clock_end;
};
#define TURNS 1500
static void spin_work(int n) {
  for (volatile int i = 0; i < n; i++) {
  }
}
static void* turner_main(void* arg) {
  struct turner* t = arg;
  long long start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (int i = 0; i < TURNS; i++) {
    sem_wait(t->mine);
    spin_work(t->work);
    sem_post(t->other);
  }
  t->clock_end = clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
  return NULL;
}

int main(void) {
  mnp_report_shim();

  /* A late thread's first reading. */
  burn_until(200 * MS);
  pthread_t t;
  pthread_create(&t, NULL, late, NULL);
  pthread_join(t, NULL);
  fprintf(stderr, "late thread's first reading: %lld ns\n", g_first);
  printf("cpu clock of the late thread below 50 ms: %s\n", yesno(g_first >= 0 && g_first < 50 * MS));

  /* Two burners. */
  struct burner b[2];
  memset(b, 0, sizeof b);
  for (int i = 0; i < 2; i++) pthread_create(&b[i].t, NULL, burner_main, &b[i]);
  for (int i = 0; i < 2; i++)
    while (!b[i].done) usleep(1000);
  for (int i = 0; i < 2; i++) {
    clockid_t c;
    int e = pthread_getcpuclockid(b[i].t, &c);
    long long v = e ? -1 : clock_ns(c);
    fprintf(stderr, "burner %d: read by main %lld ns, own %lld ns, rusage %lld ns\n", i, v, b[i].own_end,
            b[i].rusage_ns);
    printf("burner %d: its clock read by main is 100 ms, not more: %s\n", i, yesno(v >= 100 * MS && v < 190 * MS));
    printf("burner %d: getrusage agrees with its clock: %s\n", i,
           yesno(b[i].rusage_ns > b[i].own_end - 25 * MS && b[i].rusage_ns < b[i].own_end + 25 * MS));
    struct timespec res;
    printf("burner %d: clock_getres 1 ns: %s\n", i,
           yesno(clock_getres(c, &res) == 0 && res.tv_sec == 0 && res.tv_nsec == 1));
  }
  for (int i = 0; i < 2; i++) b[i].may_exit = 1;
  for (int i = 0; i < 2; i++) pthread_join(b[i].t, NULL);

  /* Sleeping on another thread's CPU clock. */
  pthread_t s;
  g_spin_stop = 0;
  pthread_create(&s, NULL, spinner, NULL);
  clockid_t sc;
  pthread_getcpuclockid(s, &sc);
  long long before = clock_ns(sc);
  struct timespec d = {0, 20 * MS};
  int e = clock_nanosleep(sc, 0, &d, NULL);
  long long after = clock_ns(sc);
  fprintf(stderr, "spinner: %lld -> %lld ns across the sleep\n", before, after);
  printf("clock_nanosleep on another thread's clock: %s, it used the 20 ms: %s\n", strerror(e),
         yesno(after - before >= 20 * MS));
  g_spin_stop = 1;
  pthread_join(s, NULL);
  clockid_t own;
  pthread_getcpuclockid(pthread_self(), &own);
  printf("clock_nanosleep on the caller's own clock: %s\n", strerror(clock_nanosleep(own, 0, &d, NULL)));
  printf("clock_nanosleep on CLOCK_THREAD_CPUTIME_ID: %s\n",
         strerror(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &d, NULL)));

  /* Finished threads. */
  pthread_t q;
  pthread_create(&q, NULL, quick, NULL);
  clockid_t qc;
  pthread_getcpuclockid(q, &qc);
  usleep(20000);
  clockid_t qc2;
  printf("pthread_getcpuclockid of a finished thread: %s\n", strerror(pthread_getcpuclockid(q, &qc2)));
  pthread_join(q, NULL);
  struct timespec x;
  errno = 0;
  int r = clock_gettime(sc, &x);
  printf("clock_gettime of a joined thread's clock: %d %s\n", r, strerror(errno));

  long long m = clock_ns(own);
  printf("main's clock counts its 200 ms: %s\n", yesno(m >= 200 * MS));

  /* Short stretches: a ping-pong of a busy and a light thread. */
  sem_t sa, sb;
  sem_init(&sa, 0, 0);
  sem_init(&sb, 0, 0);
  struct turner heavy = {&sa, &sb, 300000, 0}, light = {&sb, &sa, 30000, 0};
  long long p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  pthread_t th, tl;
  pthread_create(&th, NULL, turner_main, &heavy);
  pthread_create(&tl, NULL, turner_main, &light);
  sem_post(&sa);
  pthread_join(th, NULL);
  pthread_join(tl, NULL);
  long long p1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  long long sum = heavy.clock_end + light.clock_end;
  fprintf(stderr, "ping-pong: heavy %lld ns, light %lld ns, process %lld ns\n", heavy.clock_end, light.clock_end,
          p1 - p0);
  printf("ping-pong: the busier thread used 2.5 to 20 times the other's CPU time: %s\n",
         yesno(light.clock_end > 0 && 2 * heavy.clock_end >= 5 * light.clock_end &&
               heavy.clock_end <= 20 * light.clock_end));
  printf("ping-pong: the two clocks add up to less than twice the process's time and at least a third: %s\n",
         yesno(sum < 2 * (p1 - p0) && 3 * sum >= p1 - p0));
  return 0;
}
