/* io_stdin_flags — the runtime never changes a file's status flags, and
 * O_NONBLOCK set by the program keeps its meaning.
 *
 * The runner starts programs with stdin on /dev/null and stdout/stderr on
 * pipes.  The program records fcntl(F_GETFL) of fds 0 and 1, has 4 threads
 * read stdin (each read returns 0 on /dev/null) and print, and checks the
 * flags are unchanged.  Then, on pipes it creates:
 *   - a thread blocks in read() on a blocking pipe; while it waits, main
 *     checks that the read end is still blocking (no O_NONBLOCK) and then
 *     writes;
 *   - with O_NONBLOCK set by the program on the read end, a read from a
 *     thread returns -1 EAGAIN at once (well under 1 s), not a hang;
 *   - with O_NONBLOCK set on the write end, writes from a thread fill the
 *     pipe and then return -1 EAGAIN;
 *   - after clearing O_NONBLOCK again, a read from a thread blocks until a
 *     writer thread writes 20 ms later, and returns its bytes.
 * stdout: one "...: ok" line per check, the same natively and under the shim.
 *
 * Failure: "not ok" with a FAIL line on stderr and exit 1: flags changed by
 * the runtime, EAGAIN turned into a wait (or a wait into EAGAIN), or a hang
 * (runner timeout) of a read the program made non-blocking. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_failures;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void report(const char* what, int ok) {
  printf("%s: %s\n", what, ok ? "ok" : "not ok");
  fflush(stdout);
  if (!ok) {
    fprintf(stderr, "FAIL %s\n", what);
    g_failures++;
  }
}

static int set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* ---- stdin reads from threads ---- */

static ssize_t g_stdin_result[4];
static void* read_stdin(void* arg) {
  long i = (long)arg;
  char buf[64];
  g_stdin_result[i] = read(0, buf, sizeof buf);
  return NULL;
}

/* ---- a read from a thread, timed ---- */

struct ReadJob {
  int fd;
  ssize_t rv;
  int err;
  double elapsed;
  char buf[16];
  atomic_int started;
};

static void* timed_read(void* arg) {
  struct ReadJob* j = arg;
  atomic_store(&j->started, 1);
  double t0 = now_ms();
  j->rv = read(j->fd, j->buf, sizeof j->buf);
  j->err = errno;
  j->elapsed = now_ms() - t0;
  return NULL;
}

static void* delayed_write(void* arg) {
  usleep(20 * 1000);
  if (write(*(int*)arg, "hello", 5) != 5) fprintf(stderr, "FAIL delayed write: %s\n", strerror(errno));
  return NULL;
}

/* Fills a non-blocking write end from a thread: counts bytes until EAGAIN. */
struct FillJob {
  int fd;
  long bytes;
  int err;
};
static void* fill(void* arg) {
  struct FillJob* j = arg;
  char chunk[1024];
  memset(chunk, 'z', sizeof chunk);
  for (;;) {
    ssize_t n = write(j->fd, chunk, sizeof chunk);
    if (n < 0) {
      j->err = errno;
      return NULL;
    }
    j->bytes += n;
    if (j->bytes > (64L << 20)) return NULL; /* not a pipe any more? */
  }
}

int main(void) {
  mnp_report_shim();
  int fl0 = fcntl(0, F_GETFL), fl1 = fcntl(1, F_GETFL);
  report("stdin is not O_NONBLOCK at start", fl0 >= 0 && !(fl0 & O_NONBLOCK));

  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, read_stdin, (void*)i);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  int all_eof = 1;
  for (int i = 0; i < 4; i++) all_eof = all_eof && g_stdin_result[i] == 0;
  report("4 threads read stdin (/dev/null), each got end of file", all_eof);
  report("stdin flags unchanged after the reads", fcntl(0, F_GETFL) == fl0);
  report("stdout flags unchanged after writes", fcntl(1, F_GETFL) == fl1);

  int p[2];
  if (pipe(p) != 0) {
    perror("pipe");
    return 1;
  }

  /* Blocking pipe: the runtime may park the reader but must not flip the flag. */
  {
    struct ReadJob j = {.fd = p[0]};
    pthread_t r;
    pthread_create(&r, NULL, timed_read, &j);
    while (!atomic_load(&j.started)) usleep(1000);
    usleep(20 * 1000);
    int fl = fcntl(p[0], F_GETFL);
    report("blocking read end stays blocking while a thread waits in read", !(fl & O_NONBLOCK));
    if (write(p[1], "abc", 3) != 3) perror("write");
    pthread_join(r, NULL);
    report("the waiting read returns the bytes written", j.rv == 3 && memcmp(j.buf, "abc", 3) == 0);
  }

  /* Program-set O_NONBLOCK on the read end: EAGAIN at once. */
  {
    set_nonblock(p[0], 1);
    struct ReadJob j = {.fd = p[0]};
    pthread_t r;
    pthread_create(&r, NULL, timed_read, &j);
    pthread_join(r, NULL);
    report("O_NONBLOCK read of an empty pipe returns -1 EAGAIN", j.rv == -1 && j.err == EAGAIN);
    report("... without waiting", j.elapsed < 1000);
    report("O_NONBLOCK is still set after the read", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0);
  }

  /* Program-set O_NONBLOCK on the write end: a full pipe gives EAGAIN. */
  {
    set_nonblock(p[1], 1);
    struct FillJob j = {p[1], 0, 0};
    pthread_t w;
    pthread_create(&w, NULL, fill, &j);
    pthread_join(w, NULL);
    report("O_NONBLOCK writes fill the pipe, then return -1 EAGAIN", j.err == EAGAIN && j.bytes > 0);
    /* Empty it again (the read end is still non-blocking). */
    char buf[4096];
    long drained = 0;
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) drained += n;
    report("the pipe drains to EAGAIN with every byte written", n == -1 && errno == EAGAIN && drained == j.bytes);
    set_nonblock(p[1], 0);
  }

  /* O_NONBLOCK cleared again: the read blocks until the writer writes. */
  {
    set_nonblock(p[0], 0);
    struct ReadJob j = {.fd = p[0]};
    pthread_t r, w;
    pthread_create(&r, NULL, timed_read, &j);
    pthread_create(&w, NULL, delayed_write, &p[1]);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
    report("after clearing O_NONBLOCK the read waits for the writer", j.elapsed >= 15);
    report("... and returns its bytes", j.rv == 5 && memcmp(j.buf, "hello", 5) == 0);
  }
  close(p[0]);
  close(p[1]);

  report("stdin flags unchanged at exit", fcntl(0, F_GETFL) == fl0);
  printf("failures: %d\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
