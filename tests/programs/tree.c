/* tree — threads creating threads: a binary tree of depth 12.
 *
 * Every internal node creates its two children and joins both; the 4096
 * leaves sleep 1 ms (so many are alive at once), sample the kernel thread
 * count and return their heap index.  The root's result is the sum of the
 * leaf indexes, 4096 + ... + 8191 = 25163776.  Creation happens from many
 * threads at the same time, which under the shim with MNP_PROCS=2 means
 * from two kernel threads at once.
 *
 * Fails when a create or join fails, a result is lost or duplicated (wrong
 * sum), or it hangs.  The runner asserts kthreads_max <= MNP_PROCS + 8 under
 * the shim.
 *
 * usage: tree [depth]   (default 12) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_depth;
static atomic_int g_errors;
static atomic_llong g_kthreads_max;
static pthread_attr_t g_attr;

static void* node(void* arg) {
  long index = (long)(intptr_t)arg; /* root is 1, children of i are 2i and 2i+1 */
  int level = 0;
  for (long i = index; i > 1; i >>= 1) level++;
  if (level == g_depth) {
    usleep(1000);
    long long n = mnp_kernel_threads();
    long long cur = atomic_load(&g_kthreads_max);
    while (n > cur && !atomic_compare_exchange_weak(&g_kthreads_max, &cur, n)) {
    }
    return (void*)(intptr_t)index;
  }
  pthread_t left, right;
  int lrc = pthread_create(&left, &g_attr, node, (void*)(intptr_t)(2 * index));
  int rrc = pthread_create(&right, &g_attr, node, (void*)(intptr_t)(2 * index + 1));
  long sum = 0;
  void* res;
  if (lrc == 0 && pthread_join(left, &res) == 0) sum += (long)(intptr_t)res;
  else atomic_fetch_add(&g_errors, 1);
  if (rrc == 0 && pthread_join(right, &res) == 0) sum += (long)(intptr_t)res;
  else atomic_fetch_add(&g_errors, 1);
  return (void*)(intptr_t)sum;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  g_depth = argc > 1 ? atoi(argv[1]) : 12;
  if (g_depth < 1 || g_depth > 16) return 2;
  pthread_attr_init(&g_attr);
  pthread_attr_setstacksize(&g_attr, 64 * 1024);
  pthread_t root;
  void* res;
  if (pthread_create(&root, &g_attr, node, (void*)(intptr_t)1) != 0 || pthread_join(root, &res) != 0) return 1;
  long first = 1L << g_depth, last = (1L << (g_depth + 1)) - 1;
  long want = (first + last) * (last - first + 1) / 2;
  long sum = (long)(intptr_t)res;
  int errors = atomic_load(&g_errors);
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("tree depth=%d leaves=%ld sum=%ld expected=%ld errors=%d\n", g_depth, last - first + 1, sum, want, errors);
  return sum == want && errors == 0 ? 0 : 1;
}
