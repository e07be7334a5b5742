/* io_stdio_slowpipe — threads contend on one FILE* whose fd is a slow pipe.
 *
 * 8 writer threads fprintf 400 lines each to one FILE (fdopen of the write
 * end of a pipe shrunk to 4 KiB, with a 512-byte full buffer), fflush-ing
 * now and then; a drain thread reads the pipe in 64-byte pieces with a
 * usleep(100) between reads.  So a writer often blocks in write(2) inside
 * glibc while it holds the FILE's internal lock, and the other writers wait
 * on that lock.  The drain thread checks every line (format, per-thread
 * order, payload) and sums a hash of each line; main prints the count and
 * the checksum, which do not depend on how the writers' lines interleave.
 * Under the shim the blocked write and the lock wait must not stop the
 * drain thread from running, at MNP_PROCS=1 as at 2.
 *
 * Failure: a "FAIL" line and exit 1 for a torn, lost or reordered line, or
 * a hang (runner timeout): writer blocked in write() holding the only P,
 * or a FILE lock wake-up lost. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kWriters = 8, kLines = 400 };

static FILE* g_out;
static int g_rfd;
static long g_lines, g_bad;
static uint64_t g_sum;

static int payload_len(int id, int line) { return (id * 11 + line * 7) % 90; }

static void* writer(void* arg) {
  int id = (int)(long)arg;
  char payload[128];
  for (int line = 0; line < kLines; line++) {
    int len = payload_len(id, line);
    for (int i = 0; i < len; i++) payload[i] = (char)('a' + (id + line + i) % 26);
    payload[len] = '\0';
    fprintf(g_out, "T%d L%d %s\n", id, line, payload);
    if (line % 50 == 49) fflush(g_out);
  }
  return NULL;
}

/* Sum over lines of each line's FNV-1a hash: independent of the order in
 * which the writers' lines interleave. */
static void add_to_sum(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  g_sum += h;
}

static void check_line(const char* s, int next[kWriters]) {
  int id, line, off;
  add_to_sum(s);
  if (sscanf(s, "T%d L%d %n", &id, &line, &off) != 2 || id < 0 || id >= kWriters) {
    if (g_bad++ < 5) fprintf(stderr, "FAIL malformed line: '%.60s'\n", s);
    return;
  }
  int ok = line == next[id];
  int len = payload_len(id, line);
  if ((int)strlen(s + off) != len) ok = 0;
  for (int i = 0; ok && i < len; i++) ok = s[off + i] == (char)('a' + (id + line + i) % 26);
  if (!ok && g_bad++ < 5) fprintf(stderr, "FAIL line T%d L%d (expected L%d): '%.60s'\n", id, line, next[id], s);
  next[id] = line + 1;
  g_lines++;
}

static void* drain(void* arg) {
  (void)arg;
  char line[256];
  size_t have = 0;
  int next[kWriters] = {0};
  char buf[64];
  ssize_t n;
  while ((n = read(g_rfd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        line[have] = '\0';
        check_line(line, next);
        have = 0;
      } else if (have < sizeof line - 1) {
        line[have++] = buf[i];
      }
    }
    usleep(100);
  }
  if (n < 0) {
    fprintf(stderr, "FAIL drain read: %s\n", strerror(errno));
    g_bad++;
  }
  if (have != 0) {
    fprintf(stderr, "FAIL %zu bytes after the last newline\n", have);
    g_bad++;
  }
  for (int i = 0; i < kWriters; i++)
    if (next[i] != kLines) {
      fprintf(stderr, "FAIL writer %d: %d lines arrived\n", i, next[i]);
      g_bad++;
    }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  int p[2];
  if (pipe(p) != 0) {
    perror("pipe");
    return 1;
  }
  fcntl(p[1], F_SETPIPE_SZ, 4096);
  g_rfd = p[0];
  g_out = fdopen(p[1], "w");
  static char stdio_buf[512];
  setvbuf(g_out, stdio_buf, _IOFBF, sizeof stdio_buf);

  pthread_t d, w[kWriters];
  pthread_create(&d, NULL, drain, NULL);
  for (long i = 0; i < kWriters; i++) pthread_create(&w[i], NULL, writer, (void*)i);
  for (int i = 0; i < kWriters; i++) pthread_join(w[i], NULL);
  fclose(g_out); /* flushes; the drain thread sees EOF */
  pthread_join(d, NULL);

  printf("lines: %ld of %d, bad: %ld, checksum: %016llx\n", g_lines, kWriters * kLines, g_bad,
         (unsigned long long)g_sum);
  return (g_bad == 0 && g_lines == kWriters * kLines) ? 0 : 1;
}
