/* io_pipe_readers — 8 threads blocked in read() on their own pipes while a
 * compute thread keeps running.
 *
 * Each reader announces itself and blocks in read() on an empty pipe.  Once
 * all 8 are blocked, main samples the compute thread's counter twice, 100 ms
 * apart (MNP-CHECK compute_progress=1 when it advanced), and the kernel
 * thread count (MNP-CHECK kthreads_max: natively 10, under the shim the
 * blocked reads must park their Gs on the netpoller, so MNP_PROCS + a few).
 * Then main writes 1000 numbered 16-byte records to each pipe, round-robin,
 * and closes the pipes; readers reassemble records from reads of odd sizes
 * and check reader id, sequence number and checksum of each, in order.
 * The compute thread is a call-free loop, so at MNP_PROCS=1 it relies on
 * preemption to let main run.
 *
 * Failure: a "FAIL" line on stderr and exit 1 (lost, reordered or corrupt
 * record, no compute progress), or a hang (runner timeout) when a blocked
 * read holds the only P or a wake-up is lost. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kReaders = 8, kMessages = 1000, kRecord = 16 };

struct Record {
  uint32_t magic, reader, seq, check;
};

static int g_pipes[kReaders][2];
static atomic_int g_blocked; /* readers about to call read() */
static atomic_int g_stop;    /* compute thread stops */
static atomic_llong g_iters; /* compute thread's counter */
static long g_got[kReaders], g_bad[kReaders];

static uint32_t check_of(uint32_t reader, uint32_t seq) {
  return (reader * 2654435761u) ^ (seq * 40503u) ^ 0x5a5a5a5au;
}

static void* compute(void* arg) {
  (void)arg;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed))
    atomic_fetch_add_explicit(&g_iters, 1, memory_order_relaxed);
  return NULL;
}

static void* reader(void* arg) {
  long id = (long)arg;
  int fd = g_pipes[id][0];
  unsigned char buf[kRecord * 4];
  size_t have = 0;
  uint32_t expect = 0;
  /* Odd read sizes so records straddle reads. */
  static const size_t sizes[] = {7, 16, 33, 5, 64, 1, 48};
  int k = 0;
  atomic_fetch_add(&g_blocked, 1);
  for (;;) {
    size_t want = sizes[k++ % 7];
    if (want > sizeof buf - have) want = sizeof buf - have;
    ssize_t n = read(fd, buf + have, want);
    if (n < 0) {
      fprintf(stderr, "FAIL reader %ld: read: %s\n", id, strerror(errno));
      g_bad[id]++;
      break;
    }
    if (n == 0) break;
    have += (size_t)n;
    size_t off = 0;
    while (have - off >= kRecord) {
      struct Record r;
      memcpy(&r, buf + off, sizeof r);
      off += kRecord;
      if (r.magic != 0xfeedf00du || r.reader != (uint32_t)id || r.seq != expect ||
          r.check != check_of(r.reader, r.seq)) {
        if (g_bad[id]++ < 3)
          fprintf(stderr, "FAIL reader %ld: record %u: magic %x reader %u seq %u\n", id, expect, r.magic, r.reader,
                  r.seq);
      }
      expect++;
      g_got[id]++;
    }
    memmove(buf, buf + off, have - off);
    have -= off;
  }
  if (have != 0) {
    fprintf(stderr, "FAIL reader %ld: %zu trailing bytes\n", id, have);
    g_bad[id]++;
  }
  close(fd);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  for (int i = 0; i < kReaders; i++)
    if (pipe(g_pipes[i]) != 0) {
      perror("pipe");
      return 1;
    }
  pthread_t comp, rd[kReaders];
  pthread_create(&comp, NULL, compute, NULL);
  for (long i = 0; i < kReaders; i++) pthread_create(&rd[i], NULL, reader, (void*)i);

  while (atomic_load(&g_blocked) < kReaders) usleep(1000);
  usleep(50 * 1000); /* let every reader reach read() */
  long long kthreads = mnp_kernel_threads();
  long long c0 = atomic_load(&g_iters);
  usleep(100 * 1000);
  long long c1 = atomic_load(&g_iters);
  long long k2 = mnp_kernel_threads();
  if (k2 > kthreads) kthreads = k2;
  int progress = c1 > c0;
  mnp_check("kthreads_max", kthreads);
  mnp_check("compute_progress", progress);
  if (!progress) fprintf(stderr, "FAIL compute thread made no progress while readers were blocked\n");

  for (uint32_t seq = 0; seq < kMessages; seq++)
    for (uint32_t i = 0; i < kReaders; i++) {
      struct Record r = {0xfeedf00du, i, seq, check_of(i, seq)};
      if (write(g_pipes[i][1], &r, sizeof r) != (ssize_t)sizeof r) {
        fprintf(stderr, "FAIL write to pipe %u: %s\n", i, strerror(errno));
        return 1;
      }
    }
  for (int i = 0; i < kReaders; i++) close(g_pipes[i][1]);

  long total = 0, bad = 0;
  for (int i = 0; i < kReaders; i++) {
    pthread_join(rd[i], NULL);
    printf("reader %d: %ld records, in order: %s\n", i, g_got[i], g_bad[i] == 0 ? "yes" : "no");
    total += g_got[i];
    bad += g_bad[i];
  }
  atomic_store(&g_stop, 1);
  pthread_join(comp, NULL);
  printf("total records: %ld, bad: %ld\n", total, bad);
  return (bad == 0 && total == (long)kReaders * kMessages && progress) ? 0 : 1;
}
