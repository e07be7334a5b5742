/* create_wrap — the shim under a preloaded library that wraps
 * pthread_create and waits inside it on a condition variable until the new
 * thread has started (create_wrap_lib.c; valgrind's drd does so). The shim
 * makes its own threads (sysmon, Ms) with the next pthread_create, i.e.
 * through the wrapper: that wait, on a G, parked and ran the runtime's
 * sysmon start again on the lock it already held, and the first
 * pthread_create hung for good.
 *
 * create_wrap LIB: runs itself again with LIB added after whatever
 * LD_PRELOAD already holds (the shim, under the runner), then 8 threads
 * each sum a range and the joins add them up. stdout is the same natively
 * and under the shim; "wrapped" (stderr) counts the threads the wrapper
 * made: the program's 8 natively, the runtime's own under the shim. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 8, kRange = 100000 };

static void* sum_range(void* arg) {
  long first = (long)(intptr_t)arg * kRange;
  long long s = 0;
  for (long i = first; i < first + kRange; i++) s += i;
  return (void*)(intptr_t)s;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: create_wrap LIB\n");
    return 2;
  }
  if (!getenv("CREATE_WRAP_PRELOADED")) {
    mnp_reexec_preloading(argv[1], "CREATE_WRAP_PRELOADED", argv);
    return 4;
  }
  mnp_report_shim();
  pthread_t t[kThreads];
  for (long i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, sum_range, (void*)(intptr_t)i) != 0) return 1;
  long long total = 0;
  for (int i = 0; i < kThreads; i++) {
    void* r;
    if (pthread_join(t[i], &r) != 0) return 1;
    total += (long long)(intptr_t)r;
  }
  long long n = (long long)kThreads * kRange;
  printf("sum=%lld expected=%lld\n", total, n * (n - 1) / 2);
  atomic_int* calls = dlsym(RTLD_DEFAULT, "create_wrap_calls");
  mnp_check("wrapped", calls ? atomic_load(calls) : -1);
  return total == n * (n - 1) / 2 ? 0 : 1;
}
