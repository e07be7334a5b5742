/* gmem_slabs.c — thread stacks share mappings, and their guards still fault.
 *
 * Under mnpthread, stacks are carved from large slabs whose guard pages are
 * made with madvise(MADV_GUARD_INSTALL), so threads do not cost two
 * mappings each (vm.max_map_count once capped a process at ~32k threads);
 * where guard regions are missing, or with MNP_DEBUG=stackslabs=0, each
 * stack is a mapping of its own with a PROT_NONE guard (core/gmem.cpp).
 *
 * Scenarios, each run three times: in this process, in a copy of this
 * program exec'd with MNP_DEBUG=stackslabs=0 (the fallback layout), and in
 * a copy that first locks its memory (mlockall(MCL_CURRENT | MCL_FUTURE |
 * MCL_ONFAULT)): the kernel refuses MADV_GUARD_INSTALL on locked mappings
 * with EINVAL, as a kernel before 6.13 refuses the advice itself, so the
 * runtime takes the fallback layout by the same path (MNP-CHECK
 * locked_maps_per_1000, when the lock was granted: MNP-CHECK locked).
 *   - 400 threads with 16 KiB stacks, all alive at once (waiting on a
 *     condition variable): the number of lines of /proc/self/maps they add
 *     goes to stderr (MNP-CHECK maps_per_1000; natively about 2,000, under
 *     the shim with slabs a few, without them about 2,000).
 *   - In a forked child, while 64 such threads wait (the neighbours of the
 *     next stack in its slab): a thread writing to the lowest byte of its
 *     guard, one writing to the highest, and one recursing without end each
 *     kill the child with SIGSEGV; a thread whose neighbours exit and come
 *     back still sees its own stack's contents intact.
 * Nothing printed depends on addresses or counts of mappings. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

#define STACK (16 * 1024)

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_open;

static void* wait_gate(void* arg) {
  (void)arg;
  pthread_mutex_lock(&g_mu);
  while (!g_open) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void open_gate(void) {
  pthread_mutex_lock(&g_mu);
  g_open = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

static long count_maps(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = getc(f)) != EOF)
    if (c == '\n') n++;
  fclose(f);
  return n;
}

static int create_small(pthread_t* t, void* (*fn)(void*), void* arg) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, STACK);
  int e = pthread_create(t, &a, fn, arg);
  pthread_attr_destroy(&a);
  return e;
}

/* n waiting threads; returns how many were made. */
static int start_waiters(pthread_t* ts, int n) {
  g_open = 0;
  int made = 0;
  while (made < n && create_small(&ts[made], wait_gate, NULL) == 0) made++;
  return made;
}

static void stop_waiters(pthread_t* ts, int n) {
  open_gate();
  for (int i = 0; i < n; i++) pthread_join(ts[i], NULL);
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int __attribute__((noinline)) recurse(int depth) {
  volatile char frame[256];
  frame[0] = (char)depth;
  frame[255] = (char)depth;
  return recurse(depth + 1) + frame[0] + frame[255];
}

enum { kTouchLow, kTouchHigh, kRecurse };

static void* overflow(void* arg) {
  int mode = (int)(intptr_t)arg;
  pthread_attr_t a;
  void* lo;
  size_t size, guard;
  pthread_getattr_np(pthread_self(), &a);
  pthread_attr_getstack(&a, &lo, &size);
  pthread_attr_getguardsize(&a, &guard);
  pthread_attr_destroy(&a);
  if (mode == kTouchLow) *(volatile char*)((uintptr_t)lo - guard) = 1;
  if (mode == kTouchHigh) *(volatile char*)((uintptr_t)lo - 1) = 1;
  if (mode == kRecurse) recurse(0);
  return NULL;
}

static const char* child_end(int mode) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    static pthread_t ts[64];
    int n = start_waiters(ts, 64);
    pthread_t t;
    if (n == 64 && create_small(&t, overflow, (void*)(intptr_t)mode) == 0) pthread_join(t, NULL);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) return "waitpid failed";
  if (WIFSIGNALED(st)) return WTERMSIG(st) == SIGSEGV ? "killed by SIGSEGV" : "killed by another signal";
  return "exited";
}

/* A thread fills a local block, waits while its neighbours come and go
 * (their stacks are taken and given back around it), and checks it. */
static volatile int g_filled, g_check;
static void* keeper(void* arg) {
  (void)arg;
  unsigned char block[4096];
  for (int i = 0; i < (int)sizeof block; i++) block[i] = (unsigned char)(i * 7 + 3);
  g_filled = 1;
  while (!g_check) usleep(1000);
  for (int i = 0; i < (int)sizeof block; i++)
    if (block[i] != (unsigned char)(i * 7 + 3)) return (void*)1;
  return NULL;
}

static int run_all(const char* tag) {
  static pthread_t ts[400];
  long before = count_maps();
  int n = start_waiters(ts, 400);
  long during = count_maps();
  stop_waiters(ts, n);
  printf("%s: 400 threads with 16 KiB stacks alive at once: %s\n", tag, n == 400 ? "yes" : "no");
  char key[64];
  snprintf(key, sizeof key, "%smaps_per_1000",
           strcmp(tag, "legacy") == 0   ? "legacy_"
           : strcmp(tag, "locked") == 0 ? "locked_"
                                        : "");
  mnp_check(key, (during - before) * 1000 / (n ? n : 1));

  /* Locked memory: madvise(MADV_DONTNEED) fails there too, so nothing the
   * runtime gives back is zeroed by the kernel. Freed Gs (sysmon frees the
   * unused ones after 250 ms) shrink the handle table, and a second burst
   * grows it again, reusing the table it retired. */
  if (strcmp(tag, "locked") == 0) {
    usleep(800 * 1000);
    int m = start_waiters(ts, 400);
    stop_waiters(ts, m);
    usleep(800 * 1000);
    m = start_waiters(ts, 400);
    stop_waiters(ts, m);
    printf("%s: two more bursts of 400 threads: %s\n", tag, m == 400 ? "yes" : "no");
  }

  printf("%s: write to lowest guard byte: %s\n", tag, child_end(kTouchLow));
  printf("%s: write to highest guard byte: %s\n", tag, child_end(kTouchHigh));
  printf("%s: runaway recursion: %s\n", tag, child_end(kRecurse));

  pthread_t k;
  g_filled = g_check = 0;
  int ok = create_small(&k, keeper, NULL) == 0;
  while (ok && !g_filled) usleep(1000);
  for (int round = 0; ok && round < 3; round++) {
    int m = start_waiters(ts, 100);
    stop_waiters(ts, m);
  }
  g_check = 1;
  void* r = (void*)1;
  if (ok) pthread_join(k, &r);
  printf("%s: stack contents kept while neighbours come and go: %s\n", tag, r == NULL ? "yes" : "no");
  return 0;
}

/* Runs a copy of this program with the argument mode. */
static void run_copy(const char* self, const char* mode) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (strcmp(mode, "legacy") == 0) setenv("MNP_DEBUG", "stackslabs=0", 1);
    execl("/proc/self/exe", self, mode, (char*)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("%s run: %s\n", mode, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "exit 0" : "failed");
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1 && strcmp(argv[1], "legacy") == 0) return run_all("legacy");
  if (argc > 1 && strcmp(argv[1], "locked") == 0) {
    int locked = mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0;
    if (!locked) perror("mlockall (the locked run is a plain one)");
    mnp_check("locked", locked);
    return run_all("locked");
  }
  run_all("slabs");
  run_copy(argv[0], "legacy");
  run_copy(argv[0], "locked");
  return 0;
}
