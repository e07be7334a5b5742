/* own_alloc — a program that brings its own allocator keeps it under the
 * shim, and it works from many threads: the shim defines no malloc of its
 * own, so the program's link order gives it its allocator.
 *
 * own_alloc tcmalloc|jemalloc: runs itself again with Debian's
 * libtcmalloc_minimal.so.4 or libjemalloc.so.2 added after whatever
 * LD_PRELOAD already holds (the shim, under the runner), as a user does
 * with `LD_PRELOAD=...:libtcmalloc_minimal.so.4`. Then:
 *   - which object `malloc` resolves to (the allocator's, not glibc's);
 *   - 16 threads for 4 rounds each allocate 256 blocks of 16 bytes to
 *     64 KiB (malloc, calloc, realloc, posix_memalign, aligned_alloc),
 *     fill them with a pattern of (thread, round, index), and hand half of
 *     them to the next thread, which checks and frees them (frees from
 *     another thread than the one that allocated: the allocators' remote
 *     free paths); each round also starts and joins a short thread that
 *     allocates and exits with blocks in its thread cache (the allocator's
 *     thread-exit destructor);
 *   - the count of blocks checked and of bad ones, usable sizes too small,
 *     misaligned blocks.
 * stdout is the same natively and under the shim; with 16 threads the
 * runner's kernel-thread bound shows they were Gs. */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 16, kRounds = 4, kBlocks = 256 };

struct Block {
  unsigned char* p;
  size_t n;
  uint32_t tag;
};

static struct Block g_handed[kThreads][kBlocks / 2];
static pthread_barrier_t g_bar;
static long g_checked[kThreads], g_bad[kThreads];

static size_t size_of(uint32_t tag) {
  static const size_t kSizes[] = {16, 24, 48, 100, 256, 1000, 4096, 9000, 33000, 65536};
  return kSizes[(tag * 2654435761u >> 7) % (sizeof kSizes / sizeof *kSizes)];
}

static void fill(struct Block* b) {
  for (size_t i = 0; i < b->n; i++) b->p[i] = (unsigned char)(b->tag * 31 + i * 7);
}

static int intact(const struct Block* b) {
  for (size_t i = 0; i < b->n; i++)
    if (b->p[i] != (unsigned char)(b->tag * 31 + i * 7)) return 0;
  return 1;
}

/* One block by the k-th of the five ways; 0 on failure. */
static int take(struct Block* b, uint32_t tag, long* bad) {
  b->tag = tag;
  b->n = size_of(tag);
  void* p = NULL;
  switch (tag % 5) {
    case 0:
      p = malloc(b->n);
      break;
    case 1:
      p = calloc(1, b->n);
      if (p)
        for (size_t i = 0; i < b->n; i++)
          if (((unsigned char*)p)[i]) {
            (*bad)++;
            break;
          }
      break;
    case 2:
      p = malloc(8);
      if (p) {
        memset(p, 0x11, 8);
        void* q = realloc(p, b->n);
        if (q && b->n >= 8 && memcmp(q, "\x11\x11\x11\x11\x11\x11\x11\x11", 8) != 0) (*bad)++;
        if (!q) free(p);
        p = q;
      }
      break;
    case 3:
      if (posix_memalign(&p, 64, b->n) != 0) p = NULL;
      if (p && ((uintptr_t)p & 63)) (*bad)++;
      break;
    default:
      p = aligned_alloc(256, (b->n + 255) & ~(size_t)255);
      if (p && ((uintptr_t)p & 255)) (*bad)++;
      break;
  }
  if (!p) return 0;
  if (malloc_usable_size(p) < b->n) (*bad)++;
  b->p = p;
  fill(b);
  return 1;
}

static void* short_lived(void* arg) {
  void* keep[32];
  for (int i = 0; i < 32; i++) keep[i] = malloc(16 + (size_t)i * 40);
  for (int i = 0; i < 32; i += 2) free(keep[i]);
  for (int i = 1; i < 32; i += 2) free(keep[i]);
  void* last = malloc(64); /* exits with it freed into its thread cache */
  free(last);
  return arg;
}

static void* worker(void* arg) {
  int me = (int)(intptr_t)arg;
  int next = (me + 1) % kThreads;
  struct Block own[kBlocks];
  for (int r = 0; r < kRounds; r++) {
    for (int i = 0; i < kBlocks; i++)
      if (!take(&own[i], (uint32_t)(me << 20 | r << 12 | i), &g_bad[me])) return (void*)1;
    /* The odd half goes to the previous thread's successor slot: thread
     * `next` frees it below. */
    for (int i = 1; i < kBlocks; i += 2) g_handed[next][i / 2] = own[i];
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, NULL) != 0) return (void*)1;
    pthread_join(t, NULL);
    pthread_barrier_wait(&g_bar);
    for (int i = 0; i < kBlocks / 2; i++) {
      g_checked[me]++;
      if (!intact(&g_handed[me][i])) g_bad[me]++;
      free(g_handed[me][i].p);
    }
    for (int i = 0; i < kBlocks; i += 2) {
      g_checked[me]++;
      if (!intact(&own[i])) g_bad[me]++;
      free(own[i].p);
    }
    pthread_barrier_wait(&g_bar);
  }
  return NULL;
}

static const char* lib_path(const char* which) {
  if (strcmp(which, "tcmalloc") == 0) return "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
  if (strcmp(which, "jemalloc") == 0) return "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  return NULL;
}

int main(int argc, char** argv) {
  const char* lib = argc > 1 ? lib_path(argv[1]) : NULL;
  if (!lib) {
    fprintf(stderr, "usage: own_alloc tcmalloc|jemalloc\n");
    return 2;
  }
  if (!getenv("OWN_ALLOC_PRELOADED")) {
    if (access(lib, R_OK) != 0) {
      fprintf(stderr, "own_alloc: %s is not installed (scripts/test installs it)\n", lib);
      return 3;
    }
    mnp_reexec_preloading(lib, "OWN_ALLOC_PRELOADED", argv);
    return 4;
  }
  mnp_report_shim();
  Dl_info di;
  void* m = dlsym(RTLD_DEFAULT, "malloc");
  const char* from = m && dladdr(m, &di) && di.dli_fname ? di.dli_fname : "?";
  printf("malloc comes from the %s library: %s\n", argv[1], strstr(from, argv[1]) ? "yes" : "no");
  if (!strstr(from, argv[1])) fprintf(stderr, "malloc resolves to %s\n", from);
  pthread_barrier_init(&g_bar, NULL, kThreads);
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i) != 0) return 5;
  int failed = 0;
  for (int i = 0; i < kThreads; i++) {
    void* r;
    pthread_join(t[i], &r);
    failed += r != NULL;
  }
  long checked = 0, bad = 0;
  for (int i = 0; i < kThreads; i++) {
    checked += g_checked[i];
    bad += g_bad[i];
  }
  printf("threads that could not allocate: %d\n", failed);
  printf("blocks checked: %ld, bad: %ld\n", checked, bad);
  return 0;
}
