/* exe_malloc — the executable itself defines the malloc family and abort
 * (Firefox's defines mozjemalloc's malloc and its own abort), and its malloc
 * keeps a per-thread word in TLS that is no pointer. The runtime must leave
 * that allocator alone: it once took glibc's malloc for the one in use
 * because malloc and abort came from the same object, then read the TLS
 * word as glibc's cache pointer at the first pthread_create and crashed.
 * Threads allocate, free and reallocate; stdout is the same natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mnp_check.h"

static __thread volatile unsigned long alloc_calls; /* a counter, no pointer */
static char* arena_next;
static char* arena_end;
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;

/* Blocks carry their size in the 16 bytes before them; nothing is reused. */
static void* carve(size_t n, size_t align) {
  if (align < 16) align = 16;
  pthread_mutex_lock(&arena_lock);
  if (!arena_next) {
    size_t len = (size_t)1 << 30;
    arena_next = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena_next == MAP_FAILED) _exit(99);
    arena_end = arena_next + len;
  }
  char* p = (char*)(((unsigned long)arena_next + 16 + align - 1) & ~(align - 1));
  if (p + n > arena_end) _exit(98);
  ((size_t*)p)[-1] = n;
  arena_next = p + n;
  pthread_mutex_unlock(&arena_lock);
  alloc_calls = alloc_calls + 0x10000000001ul;
  return p;
}

void* malloc(size_t n) { return carve(n, 16); }
void free(void* p) { (void)p; }
void* calloc(size_t a, size_t b) { return carve(a * b, 16); } /* the arena is fresh zero pages */
void* realloc(void* old, size_t n) {
  void* p = carve(n, 16);
  if (old) {
    size_t had = ((size_t*)old)[-1];
    memcpy(p, old, had < n ? had : n);
  }
  return p;
}
void* memalign(size_t align, size_t n) { return carve(n, align); }
void* aligned_alloc(size_t align, size_t n) { return carve(n, align); }
int posix_memalign(void** out, size_t align, size_t n) {
  *out = carve(n, align);
  return 0;
}
void* valloc(size_t n) { return carve(n, 4096); }
void* pvalloc(size_t n) { return carve((n + 4095) & ~(size_t)4095, 4096); }
size_t malloc_usable_size(void* p) { return p ? ((size_t*)p)[-1] : 0; }
void abort(void) {
  static const char msg[] = "exe_malloc: abort\n";
  write(2, msg, sizeof msg - 1);
  _exit(134);
}

static void* worker(void* arg) {
  long id = (long)arg;
  char* s = NULL;
  for (int i = 0; i < 200; i++) {
    s = realloc(s, 32 + (size_t)i);
    snprintf(s, 32 + (size_t)i, "thread %ld round %d", id, i);
    free(malloc(64));
  }
  return s;
}

int main(void) {
  mnp_report_shim();
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  for (int i = 0; i < 8; i++) {
    void* r;
    pthread_join(t[i], &r);
    printf("%s\n", (char*)r);
  }
  return 0;
}
