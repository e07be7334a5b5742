/* file_read_whole — reads of a regular file whose pages are only partly in
 * the page cache, on a blocking fd and on one opened O_NONBLOCK.
 *
 * The kernel never cuts a read of a regular file short but at its end, and
 * ignores O_NONBLOCK there. The shim tries each read with RWF_NOWAIT
 * first, which returns what the cache holds, or EAGAIN: it once passed
 * both on (qemu: "could not load PC BIOS"; GHC, which opens every file
 * O_NONBLOCK: "hGetBuf: permission denied"). Each round drops the file's
 * pages, reads its first 12 KiB back into the cache, then reads it through
 * with read() and readv(). Stdout: the counts of short reads, EAGAINs and
 * wrong bytes (all 0), as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kSize = (2 << 20) + 123, kChunk = 256 << 10, kRounds = 6 };

static int pipefd[2];

/* A second thread, parked: with one thread the shim makes the plain call. */
static void* idler(void* a) {
  (void)a;
  char c;
  return read(pipefd[0], &c, 1) == 1 ? NULL : (void*)1;
}

static unsigned char byte_at(long off) { return (unsigned char)(off * 131 + (off >> 12)); }

static long short_reads, eagains, wrong;

static void read_through(const char* path, int flags, int use_readv) {
  int fd = open(path, O_RDONLY | flags);
  if (fd < 0) exit(2);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  char head[12288];
  if (pread(fd, head, sizeof head, 0) != (ssize_t)sizeof head) exit(3);
  static unsigned char buf[kChunk];
  long off = 0;
  for (;;) {
    ssize_t n;
    if (use_readv) {
      struct iovec v[2] = {{buf, kChunk / 4}, {buf + kChunk / 4, kChunk - kChunk / 4}};
      n = readv(fd, v, 2);
    } else {
      n = read(fd, buf, kChunk);
    }
    if (n < 0 && errno == EAGAIN) {
      eagains++;
      continue;
    }
    if (n <= 0) break;
    long want = kSize - off < kChunk ? kSize - off : kChunk;
    if (n != want) short_reads++;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != byte_at(off + i)) wrong++;
    off += n;
  }
  if (off != kSize) wrong++;
  close(fd);
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  char path[] = "/tmp/mnp_file_read_whole_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  static unsigned char data[kSize];
  for (long i = 0; i < kSize; i++) data[i] = byte_at(i);
  if (write(fd, data, kSize) != kSize || fsync(fd) != 0) return 1;
  close(fd);
  if (pipe(pipefd) != 0) return 1;
  pthread_t t;
  if (pthread_create(&t, NULL, idler, NULL) != 0) return 1;
  for (int r = 0; r < kRounds; r++) read_through(path, 0, r & 1);
  long blocking_short = short_reads, blocking_wrong = wrong;
  short_reads = wrong = 0;
  for (int r = 0; r < kRounds; r++) read_through(path, O_NONBLOCK, r & 1);
  unlink(path);
  if (write(pipefd[1], "x", 1) != 1) return 1;
  pthread_join(t, NULL);
  printf("blocking fd: short reads %ld, wrong bytes %ld\n", blocking_short, blocking_wrong);
  printf("O_NONBLOCK fd: short reads %ld, EAGAIN %ld, wrong bytes %ld\n", short_reads, eagains, wrong);
  return blocking_short || blocking_wrong || short_reads || eagains || wrong;
}
