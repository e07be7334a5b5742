/* own_allocator — a program with its own malloc whose lock waits through
 * syscall(SYS_futex), and threads that all name themselves (Chromium's
 * shape: PartitionAlloc, every thread named).
 *
 * The loader hands glibc the program's calloc, so glibc's pthread_create
 * allocates each new kernel thread's DTV here. A named thread (`holder`)
 * keeps the lock through a sleep while the other named threads keep
 * creating threads, each of which needs a kernel thread of its own (an M)
 * when it names itself. The shim hung here in every run while it made Ms
 * with glibc's pthread_create: the only P was promised to an M whose
 * creation waited on the lock, and the holder's wake-up needed that P.
 * Ms' threads are now made with clone (core/mthread.h).
 * Stdout: the rounds done and the total the threads computed, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

/* ---- the allocator: a bump arena under a futex lock (0 free, 1 held, 2
 * held with waiters), freeing nothing ---- */

enum { kArena = 256 << 20 };
static char* arena;
static size_t used;
static atomic_uint lock_word;

static void futex_wait(atomic_uint* w, unsigned v) {
  syscall(SYS_futex, w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, v, NULL, NULL, 0);
}
static void futex_wake(atomic_uint* w) { syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0); }

static void alloc_lock(void) {
  unsigned z = 0;
  if (atomic_compare_exchange_strong(&lock_word, &z, 1)) return;
  while (atomic_exchange(&lock_word, 2) != 0) futex_wait(&lock_word, 2);
}
static void alloc_unlock(void) {
  if (atomic_exchange(&lock_word, 0) == 2) futex_wake(&lock_word);
}

static void* bump(size_t align, size_t n) {
  alloc_lock();
  if (!arena) {
    void* p = mmap(NULL, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    arena = p == MAP_FAILED ? NULL : p;
  }
  size_t at = (used + align - 1) & ~(align - 1);
  void* r = NULL;
  /* 16 bytes before each block hold its size (realloc, malloc_usable_size). */
  if (arena && at + 16 + n <= kArena) {
    at += 16;
    r = arena + at;
    ((size_t*)r)[-1] = n;
    used = at + n;
  }
  alloc_unlock();
  if (!r) errno = ENOMEM;
  return r;
}

void* malloc(size_t n) { return bump(16, n); }
void free(void* p) { (void)p; }
void* calloc(size_t a, size_t b) {
  if (b && a > SIZE_MAX / b) return NULL;
  return bump(16, a * b); /* fresh arena memory is zero */
}
void* realloc(void* p, size_t n) {
  void* r = bump(16, n);
  if (r && p) memcpy(r, p, ((size_t*)p)[-1] < n ? ((size_t*)p)[-1] : n);
  return r;
}
size_t malloc_usable_size(void* p) { return p ? ((size_t*)p)[-1] : 0; }
void* memalign(size_t align, size_t n) { return bump(align < 16 ? 16 : align, n); }
void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
  void* r = memalign(align, n);
  if (!r) return ENOMEM;
  *out = r;
  return 0;
}
void* valloc(size_t n) { return memalign(4096, n); }
void* pvalloc(size_t n) { return memalign(4096, (n + 4095) & ~(size_t)4095); }

/* ---- the threads ---- */

enum { kRounds = 12, kMakers = 3, kPerMaker = 4 };
static atomic_long total;
static atomic_int holding;

static void name_self(const char* what, int i) {
  char name[16];
  snprintf(name, sizeof name, "%s%d", what, i);
  prctl(PR_SET_NAME, name);
}

static void* leaf(void* a) {
  name_self("leaf", (int)(intptr_t)a);
  atomic_fetch_add(&total, (intptr_t)a);
  return NULL;
}

/* Keeps the allocator's lock through a sleep: any allocation meanwhile,
 * the runtime's among them, waits for it. */
static void* holder(void* a) {
  (void)a;
  name_self("holder", 0);
  alloc_lock();
  atomic_store(&holding, 1);
  usleep(30 * 1000);
  alloc_unlock();
  return NULL;
}

static void* maker(void* a) {
  int id = (int)(intptr_t)a;
  name_self("maker", id);
  while (!atomic_load(&holding)) sched_yield();
  pthread_t t[kPerMaker];
  for (int i = 0; i < kPerMaker; i++)
    if (pthread_create(&t[i], NULL, leaf, (void*)(intptr_t)(id * kPerMaker + i + 1)) != 0) return (void*)1;
  for (int i = 0; i < kPerMaker; i++) pthread_join(t[i], NULL);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  long want = 0;
  for (int r = 0; r < kRounds; r++) {
    atomic_store(&holding, 0);
    pthread_t h, m[kMakers];
    if (pthread_create(&h, NULL, holder, NULL) != 0) return 1;
    for (int i = 0; i < kMakers; i++)
      if (pthread_create(&m[i], NULL, maker, (void*)(intptr_t)i) != 0) return 1;
    void* bad = NULL;
    for (int i = 0; i < kMakers; i++) {
      void* ret;
      pthread_join(m[i], &ret);
      if (ret) bad = ret;
    }
    pthread_join(h, NULL);
    if (bad) {
      printf("round %d: pthread_create failed\n", r);
      return 1;
    }
    for (int i = 1; i <= kMakers * kPerMaker; i++) want += i;
  }
  printf("rounds %d total %ld (want %ld)\n", kRounds, atomic_load(&total), want);
  mnp_check("kthreads_end", mnp_kernel_threads());
  return atomic_load(&total) == want ? 0 : 1;
}
