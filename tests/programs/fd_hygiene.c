/* fd_hygiene — a program that closes and reuses fd numbers it never opened,
 * as daemons and shells do, must not break the runtime underneath it, and
 * the runtime must never read or write the program's files.
 *
 *   (a) close() of every fd from 3 to 1023, then closefrom(3) and
 *       close_range(3, ~0U, 0): afterwards threads blocked in read on pipes
 *       and in poll with a timeout still wake up, and a sleep still ends;
 *   (b) dup2 of one scratch file (opened O_RDWR, empty) onto every fd from
 *       3 to 1015 (the runtime keeps its own at 1008-1011 when
 *       RLIMIT_NOFILE allows 1024, and must move out of the way), then a CPU-bound thread long enough to be preempted,
 *       then the same wake-ups as in (a); the file must still be empty
 *       (nothing wrote into it through a reused number) and its offset 0
 *       (nothing read from it).
 * stdout: one "name: ok" line per check; "name: not ok" and a FAIL line on
 * stderr, exit 1, otherwise.  Under the shim a broken netpoller shows as a
 * hang (the runner's timeout). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_failures;

static void report(const char* name, int ok) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  if (!ok) {
    fprintf(stderr, "FAIL %s\n", name);
    g_failures++;
  }
}

struct Waiter {
  int rd;
  int use_poll;
  char got;
};

static void* waiter(void* arg) {
  struct Waiter* w = arg;
  if (w->use_poll) {
    struct pollfd p = {w->rd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1 || !(p.revents & POLLIN)) return NULL;
  }
  if (read(w->rd, &w->got, 1) != 1) w->got = 0;
  return NULL;
}

/* Four threads wait for a pipe each (two in read, two in poll); main sleeps
 * 20 ms and writes a different byte to each.  1 if all four got theirs. */
static int wakeups_work(void) {
  enum { kN = 4 };
  struct Waiter w[kN];
  int wr[kN];
  pthread_t t[kN];
  for (int i = 0; i < kN; i++) {
    int p[2];
    if (pipe(p) != 0) return 0;
    w[i] = (struct Waiter){p[0], i % 2, 0};
    wr[i] = p[1];
    if (pthread_create(&t[i], NULL, waiter, &w[i]) != 0) return 0;
  }
  struct timespec ts = {0, 20 * 1000000L};
  nanosleep(&ts, NULL);
  for (int i = 0; i < kN; i++) {
    char c = (char)('a' + i);
    if (write(wr[i], &c, 1) != 1) return 0;
  }
  int ok = 1;
  for (int i = 0; i < kN; i++) {
    pthread_join(t[i], NULL);
    if (w[i].got != (char)('a' + i)) ok = 0;
    close(w[i].rd);
    close(wr[i]);
  }
  return ok;
}

static void* spin(void* arg) {
  volatile unsigned long* x = arg;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    for (int i = 0; i < 1000000; i++) *x += (unsigned long)i;
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 60);
  return NULL;
}

int main(void) {
  mnp_report_shim();

  /* (a) */
  for (int fd = 3; fd < 1024; fd++) close(fd);
  closefrom(3);
  int cr = close_range(3, ~0U, 0);
  report("close everything above 2", cr == 0 && wakeups_work());

  /* (b) */
  char path[] = "/tmp/mnp_fd_hygiene_XXXXXX";
  int f = mkstemp(path);
  if (f < 0) {
    perror("mkstemp");
    return 1;
  }
  unlink(path);
  /* Up to 1015, or just below RLIMIT_NOFILE if that is lower (the runtime
   * then keeps its fds 16 below the limit). */
  struct rlimit rl;
  int top = 1016;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)top) top = (int)rl.rlim_cur - 1;
  int dups_ok = 1;
  for (int fd = 3; fd < top; fd++)
    if (fd != f && dup2(f, fd) != fd) dups_ok = 0;
  /* Two CPU-bound threads for 60 ms: enough for the runtime's preemption
   * (and its stack walks) to act at MNP_PROCS=1. */
  volatile unsigned long sink = 0;
  pthread_t s1, s2;
  pthread_create(&s1, NULL, spin, (void*)&sink);
  pthread_create(&s2, NULL, spin, (void*)&sink);
  pthread_join(s1, NULL);
  pthread_join(s2, NULL);
  for (int fd = 3; fd < top; fd++)
    if (fd != f) close(fd);
  int wake = wakeups_work();
  struct stat st;
  int untouched = fstat(f, &st) == 0 && st.st_size == 0 && lseek(f, 0, SEEK_CUR) == 0;
  report("dup2 onto every fd", dups_ok && wake);
  report("scratch file untouched", untouched);
  if (!untouched)
    fprintf(stderr, "FAIL size %lld offset %lld\n", (long long)st.st_size, (long long)lseek(f, 0, SEEK_CUR));
  return g_failures ? 1 : 0;
}
