/* chain — 10,000 threads alive at once.
 *
 * Thread d creates thread d+1 (64 KiB stack) and joins it, so at the bottom
 * of the chain every thread is alive and all but one are blocked in
 * pthread_join.  The deepest thread reads "Threads:" of /proc/self/status
 * (MNP-CHECK kthreads_max).  Each thread returns d + (result of its child);
 * main prints the sum, which must be N(N+1)/2.
 *
 * Fails when: a create fails (natively EAGAIN means the limits are too low;
 * under the shim it means kernel threads are being used per G), a join
 * returns the wrong value or an error, the stack size attribute is ignored in
 * a way that exhausts memory, or the process hangs (runner timeout).  The
 * runner also asserts kthreads_max <= MNP_PROCS + 4 under the shim and
 * >= N natively (proving the measurement sees the threads).
 *
 * usage: chain [depth]   (default 10000) */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnp_check.h"

enum { kStackSize = 64 * 1024 };

static long g_depth;
static atomic_llong g_kthreads_max;
static atomic_int g_errors;

static void note_kthreads(void) {
  long long n = mnp_kernel_threads();
  long long cur = atomic_load(&g_kthreads_max);
  while (n > cur && !atomic_compare_exchange_weak(&g_kthreads_max, &cur, n)) {
  }
}

static void* link_main(void* arg) {
  long d = (long)(intptr_t)arg;
  if (d == g_depth) {
    note_kthreads();
    return (void*)(intptr_t)d;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackSize);
  pthread_t child;
  int rc = pthread_create(&child, &attr, link_main, (void*)(intptr_t)(d + 1));
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    /* Report once per failing depth; the chain ends here. */
    fprintf(stderr, "chain: pthread_create at depth %ld failed: %s\n", d + 1, strerror(rc));
    atomic_fetch_add(&g_errors, 1);
    note_kthreads();
    return (void*)(intptr_t)d;
  }
  void* res = NULL;
  rc = pthread_join(child, &res);
  if (rc != 0) {
    fprintf(stderr, "chain: pthread_join at depth %ld failed: %s\n", d, strerror(rc));
    atomic_fetch_add(&g_errors, 1);
    return (void*)(intptr_t)d;
  }
  long child_sum = (long)(intptr_t)res;
  long expect = (g_depth * (g_depth + 1) - d * (d + 1)) / 2; /* (d+1) + ... + N */
  if (child_sum != expect) atomic_fetch_add(&g_errors, 1);
  return (void*)(intptr_t)(d + child_sum);
}

int main(int argc, char** argv) {
  mnp_report_shim();
  g_depth = argc > 1 ? atol(argv[1]) : 10000;
  if (g_depth < 1) g_depth = 1;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackSize);
  pthread_t first;
  int rc = pthread_create(&first, &attr, link_main, (void*)(intptr_t)1);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    fprintf(stderr, "chain: first pthread_create failed: %s\n", strerror(rc));
    return 1;
  }
  void* res = NULL;
  rc = pthread_join(first, &res);
  if (rc != 0) {
    fprintf(stderr, "chain: first pthread_join failed: %s\n", strerror(rc));
    return 1;
  }

  long sum = (long)(intptr_t)res;
  int errors = atomic_load(&g_errors);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("chain depth=%ld sum=%ld errors=%d\n", g_depth, sum, errors);
  return (errors == 0 && sum == g_depth * (g_depth + 1) / 2) ? 0 : 1;
}
