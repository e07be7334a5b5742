// bench/demo.c — mnp-demo, the thread-heavy program scripts/mnrun runs
// natively and under the shim when given no arguments.
//
//   mnp-demo [TREES [ALIVE]]      (defaults: 2 trees, 10000 alive)
//
// Phase 1, fork/join: sums mix(i) over [0, TREES * 2^22) by recursive
// divide and conquer. A range longer than a leaf (256 numbers) is split; a
// new thread sums the left half while the current thread does the right half,
// then joins. Each tree makes 16,383 threads that live a few microseconds.
// Trees run one after another, so at most one tree's threads are alive.
//
// Phase 2, ALIVE threads alive at once: a chain in which thread k joins
// thread k-1 and returns k + 1 plus what k-1 returned. Thread 0 waits
// (yielding) until every thread of the chain has started, so all of them are
// alive together; main joins the last one and gets 1 + 2 + ... + ALIVE.
//
// Only atomics, sched_yield, pthread_create and pthread_join are used: no
// mutexes, no condition variables, no sleeps. Output, one "key: value" per
// line (scripts/mnrun parses it):
//
//   threads, alive at once  how many threads each phase makes
//   result                 both sums; identical natively and under the shim
//   fork-join ms, alive ms, elapsed ms     wall time per phase and in total
//   kernel threads at start, fork-join peak kernel threads,
//   alive peak kernel threads, peak kernel threads
//       "Threads:" of /proc/self/status, sampled by main at start, by every
//       64th leaf of phase 1 and by the last thread to start in phase 2.
//       Under the shim the peak stays near MNP_PROCS; natively phase 2
//       alone reaches ALIVE + 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  kTreeLog2 = 22,           // numbers per tree: 2^22
  kLeaf = 256,              // ranges this short are summed without a thread
  kSampleEveryLeaves = 64,  // leaves whose index is a multiple sample Threads:
};

static atomic_long peak_kernel_threads;

static void die(const char* what, int err) {
  fprintf(stderr, "mnp-demo: %s: %s\n", what, strerror(err));
  exit(1);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// "Threads:" from /proc/self/status: the number of kernel threads in the
// process, whatever the thread library makes of pthread_create. Returns -1
// if it cannot be read.
static long kernel_threads(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* line = strstr(buf, "\nThreads:");
  return line ? strtol(line + 9, NULL, 10) : -1;
}

static void sample_kernel_threads(void) {
  long n = kernel_threads();
  long peak = atomic_load_explicit(&peak_kernel_threads, memory_order_relaxed);
  while (n > peak && !atomic_compare_exchange_weak_explicit(&peak_kernel_threads, &peak, n, memory_order_relaxed,
                                                            memory_order_relaxed)) {
  }
}

// ---------------------------------------------------------------------------
// Phase 1: fork/join sum.

// A 64-bit mixing function (the finaliser of the SplitMix generator), so that
// leaves do some arithmetic and the sum is not a closed formula the compiler
// could fold.
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct range {
  uint64_t lo, hi;  // [lo, hi)
  uint64_t sum;     // written by the thread that sums the range
};

static uint64_t sum_range(uint64_t lo, uint64_t hi);

static void* sum_thread(void* arg) {
  struct range* r = arg;
  r->sum = sum_range(r->lo, r->hi);
  return NULL;
}

static uint64_t sum_range(uint64_t lo, uint64_t hi) {
  if (hi - lo <= kLeaf) {
    if ((lo / kLeaf) % kSampleEveryLeaves == 0) sample_kernel_threads();
    uint64_t s = 0;
    for (uint64_t i = lo; i < hi; i++) s += mix(i);
    return s;
  }
  uint64_t mid = lo + (hi - lo) / 2;
  // The left half lives on this stack frame: the frame outlives the thread
  // because we join it before returning.
  struct range left = {lo, mid, 0};
  pthread_t t;
  int err = pthread_create(&t, NULL, sum_thread, &left);
  if (err != 0) die("pthread_create (fork/join)", err);
  uint64_t right = sum_range(mid, hi);
  err = pthread_join(t, NULL);
  if (err != 0) die("pthread_join (fork/join)", err);
  return left.sum + right;
}

// ---------------------------------------------------------------------------
// Phase 2: a chain of threads all alive at once.

struct link {
  pthread_t prev;  // the thread this one joins (unused for link 0)
  long index;      // 0 .. chain_len-1
};

static long chain_len;
static atomic_long chain_started;
static atomic_bool chain_go;  // set by the last link to start, after it sampled

static void* chain_thread(void* arg) {
  const struct link* l = arg;
  long started = atomic_fetch_add_explicit(&chain_started, 1, memory_order_relaxed) + 1;
  // Nobody exits before link 0 does, and link 0 waits for chain_go: the last
  // link to start sees every link alive.
  if (started == chain_len) {
    sample_kernel_threads();
    atomic_store_explicit(&chain_go, true, memory_order_release);
  }
  uintptr_t below = 0;
  if (l->index == 0) {
    while (!atomic_load_explicit(&chain_go, memory_order_acquire)) sched_yield();
  } else {
    void* ret;
    int err = pthread_join(l->prev, &ret);
    if (err != 0) die("pthread_join (chain)", err);
    below = (uintptr_t)ret;
  }
  return (void*)(below + (uintptr_t)l->index + 1);
}

static uint64_t run_chain(long n) {
  struct link* links = calloc((size_t)n, sizeof *links);
  if (links == NULL) die("calloc", ENOMEM);
  chain_len = n;
  atomic_store(&chain_started, 0);
  atomic_store(&chain_go, false);
  pthread_t prev = 0;
  for (long i = 0; i < n; i++) {
    links[i].prev = prev;
    links[i].index = i;
    int err = pthread_create(&prev, NULL, chain_thread, &links[i]);
    if (err != 0) die("pthread_create (chain)", err);
  }
  void* ret;
  int err = pthread_join(prev, &ret);
  if (err != 0) die("pthread_join (chain)", err);
  free(links);
  return (uint64_t)(uintptr_t)ret;
}

// ---------------------------------------------------------------------------

static long parse_arg(const char* s, const char* name, long max) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 1 || v > max) {
    fprintf(stderr, "mnp-demo: %s must be an integer in [1, %ld], not \"%s\"\n", name, max, s);
    fprintf(stderr, "usage: mnp-demo [TREES [ALIVE]]\n");
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  long trees = 2, alive = 10000;
  if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
    fprintf(stderr, "usage: mnp-demo [TREES [ALIVE]]   (defaults: 2 10000)\n");
    return 2;
  }
  if (argc > 1) trees = parse_arg(argv[1], "TREES", 1024);
  if (argc > 2) alive = parse_arg(argv[2], "ALIVE", 30000);

  long at_start = kernel_threads();
  double t0 = now_ms();

  const uint64_t tree_size = (uint64_t)1 << kTreeLog2;
  uint64_t fork_sum = 0;
  for (long k = 0; k < trees; k++) fork_sum += sum_range((uint64_t)k * tree_size, (uint64_t)(k + 1) * tree_size);
  double t1 = now_ms();
  long fork_peak = atomic_exchange(&peak_kernel_threads, 0);

  uint64_t chain_sum = run_chain(alive);
  double t2 = now_ms();
  long alive_peak = atomic_load(&peak_kernel_threads);

  long fork_threads = trees * (long)(tree_size / kLeaf - 1);
  printf("threads: %ld (%ld short-lived in fork/join, then %ld alive at once)\n", fork_threads + alive, fork_threads,
         alive);
  printf("alive at once: %ld\n", alive);
  printf("result: %016" PRIx64 " %" PRIu64 "\n", fork_sum, chain_sum);
  printf("fork-join ms: %.1f\n", t1 - t0);
  printf("alive ms: %.1f\n", t2 - t1);
  printf("elapsed ms: %.1f\n", t2 - t0);
  printf("kernel threads at start: %ld\n", at_start);
  printf("fork-join peak kernel threads: %ld\n", fork_peak);
  printf("alive peak kernel threads: %ld\n", alive_peak);
  printf("peak kernel threads: %ld\n", fork_peak > alive_peak ? fork_peak : alive_peak);
  if (chain_sum != (uint64_t)alive * (uint64_t)(alive + 1) / 2) {
    fprintf(stderr, "mnp-demo: chain sum is wrong: %" PRIu64 "\n", chain_sum);
    return 1;
  }
  return 0;
}
