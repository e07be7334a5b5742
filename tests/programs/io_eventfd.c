/* io_eventfd — an eventfd shared by threads, then a pipe on the same fd
 * number.
 *
 * The shim tries reads and writes without blocking first (RWF_NOWAIT); an
 * eventfd takes that flag on reads and refuses it on writes, and the shim
 * remembers the refusal per fd number until the fd is closed. So:
 *   1. 4 writer threads each add 1 to an eventfd 2,000 times while a reader
 *      thread reads (blocking) until the values it read sum to 8,000:
 *      prints the sum and the writers' results.
 *   2. The eventfd is closed and a pipe made on the same number (dup2): a
 *      writer thread writes 256 KiB to it in one write(), which blocks
 *      (the pipe holds 64 KiB), while a reader thread reads it in 1,000-byte
 *      reads and checks every byte. Before the reader starts, main counts its
 *      own progress while the write is blocked (sched_yield loop), which
 *      must go on at MNP_PROCS=1 too: prints the write's result, the bytes
 *      read, whether they were right and whether main ran meanwhile.
 * Output is the same natively and under the shim. Failure: a wrong line, or
 * a hang (runner timeout). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kWriters = 4, kAdds = 2000, kPipeBytes = 256 * 1024 };

static int g_efd;
static int g_writer_bad;

static void* ev_writer(void* arg) {
  (void)arg;
  for (int i = 0; i < kAdds; i++) {
    uint64_t one = 1;
    if (write(g_efd, &one, sizeof one) != (ssize_t)sizeof one) __atomic_add_fetch(&g_writer_bad, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void* ev_reader(void* arg) {
  uint64_t* sum = arg;
  while (*sum < (uint64_t)kWriters * kAdds) {
    uint64_t v;
    if (read(g_efd, &v, sizeof v) != (ssize_t)sizeof v) break;
    *sum += v;
  }
  return NULL;
}

static int g_pipe[2];
static atomic_int g_pipe_done;

static unsigned char pattern(long i) { return (unsigned char)(i * 7 + i / 251); }

static void* pipe_writer(void* arg) {
  long* result = arg;
  unsigned char* buf = malloc(kPipeBytes);
  for (long i = 0; i < kPipeBytes; i++) buf[i] = pattern(i);
  *result = write(g_pipe[1], buf, kPipeBytes);
  free(buf);
  return NULL;
}

static void* pipe_reader(void* arg) {
  long* got = arg; /* got[0]: bytes, got[1]: wrong bytes */
  unsigned char buf[1000];
  while (got[0] < kPipeBytes) {
    ssize_t n = read(g_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != pattern(got[0] + i)) got[1]++;
    got[0] += n;
  }
  atomic_store(&g_pipe_done, 1);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  g_efd = eventfd(0, EFD_CLOEXEC);
  if (g_efd < 0) {
    perror("eventfd");
    return 1;
  }
  pthread_t w[kWriters], r;
  uint64_t sum = 0;
  pthread_create(&r, NULL, ev_reader, &sum);
  for (int i = 0; i < kWriters; i++) pthread_create(&w[i], NULL, ev_writer, NULL);
  for (int i = 0; i < kWriters; i++) pthread_join(w[i], NULL);
  pthread_join(r, NULL);
  printf("eventfd: sum %llu, failed writes %d\n", (unsigned long long)sum, g_writer_bad);

  int p[2];
  if (pipe(p) != 0) return 1;
  int num = g_efd;
  close(g_efd);
  if (dup2(p[1], num) != num) return 1;
  close(p[1]);
  g_pipe[0] = p[0];
  g_pipe[1] = num;
  long result = 0, got[2] = {0, 0};
  pthread_t pw, pr;
  pthread_create(&pw, NULL, pipe_writer, &result);
  usleep(50 * 1000); /* the writer fills the pipe and blocks */
  /* Main goes on while the write is blocked (no reader yet). Counted before
   * the reader starts: counted during the transfer, a reader that emptied
   * the pipe before main's first look made it "no" (5 in 300 runs at 2 Ps). */
  long spins = 0;
  for (int i = 0; i < 100; i++) {
    if (!atomic_load(&g_pipe_done)) spins++;
    sched_yield();
  }
  pthread_create(&pr, NULL, pipe_reader, got);
  while (!atomic_load(&g_pipe_done)) sched_yield();
  pthread_join(pw, NULL);
  pthread_join(pr, NULL);
  printf("pipe on the eventfd's number: write returned %ld, read %ld bytes, %ld wrong\n", result, got[0], got[1]);
  printf("main ran meanwhile: %s\n", spins > 0 ? "yes" : "no");
  return 0;
}
