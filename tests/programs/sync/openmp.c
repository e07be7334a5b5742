/* openmp — a GNU OpenMP (libgomp) program: its thread pool, barriers and
 * task scheduler run on pthreads plus libgomp's own raw futex calls.
 *
 * Covers: `parallel for reduction(+)` over 4,000,000 terms; a `critical`
 * section incremented 100,000 times across the team; 200 iterations of a loop
 * with `#pragma omp barrier` in which every thread writes its slot and after
 * the barrier thread 0 checks all slots hold the iteration number; recursive
 * `task` + `taskwait` computing fib(24); a `single` + `atomic` counter.  The
 * results do not depend on the team size (run with OMP_NUM_THREADS=8;
 * MNP-CHECK omp_threads reports it).
 *
 * Failure: a wrong sum, counter or fib value, a barrier that lets a thread
 * through early (barrier_errors), or a hang in the team barrier. */
#include <omp.h>
#include <stdint.h>

#include "sync_util.h"

enum { kMaxThreads = 256 };

static long fib_tasks(int n) {
  if (n < 2) return n;
  long x, y;
  if (n < 12) return fib_tasks(n - 1) + fib_tasks(n - 2);
#pragma omp task shared(x)
  x = fib_tasks(n - 1);
#pragma omp task shared(y)
  y = fib_tasks(n - 2);
#pragma omp taskwait
  return x + y;
}

static long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

int main(void) {
  mnp_report_shim();
  const long n = 4000000;
  unsigned long long sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(dynamic, 4096)
  for (long i = 0; i < n; i++) sum += (unsigned long long)(i % 1000) * (unsigned long long)(i % 7);
  unsigned long long expect = 0;
  for (long i = 0; i < n; i++) expect += (unsigned long long)(i % 1000) * (unsigned long long)(i % 7);
  printf("reduction: sum=%llu expected=%llu\n", sum, expect);
  SYNC_CHECK(sum == expect);

  long critical_count = 0;
#pragma omp parallel for
  for (int i = 0; i < 100000; i++) {
#pragma omp critical
    critical_count++;
  }
  printf("critical: count=%ld\n", critical_count);
  SYNC_CHECK(critical_count == 100000);

  static int slots[kMaxThreads];
  int barrier_errors = 0, team = 0;
#pragma omp parallel
  {
    int me = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
    team = nt;
    for (int it = 1; it <= 200; it++) {
      if (me < kMaxThreads) __atomic_store_n(&slots[me], it, __ATOMIC_RELAXED);
#pragma omp barrier
      if (me == 0)
        for (int t = 0; t < nt && t < kMaxThreads; t++)
          if (__atomic_load_n(&slots[t], __ATOMIC_RELAXED) != it) barrier_errors++;
#pragma omp barrier
    }
  }
  mnp_check("omp_threads", team);
  printf("barrier: iterations=200 barrier_errors=%d\n", barrier_errors);
  SYNC_CHECK(barrier_errors == 0);

  long fib = 0;
#pragma omp parallel
#pragma omp single
  fib = fib_tasks(24);
  printf("tasks: fib(24)=%ld expected=%ld\n", fib, fib_serial(24));
  SYNC_CHECK(fib == fib_serial(24));

  long singles = 0, atomics = 0;
#pragma omp parallel
  {
#pragma omp single
    singles++;
#pragma omp atomic
    atomics++;
  }
  printf("single: runs=%ld atomic_matches_team=%d\n", singles, atomics == team);
  SYNC_CHECK(singles == 1 && atomics == team);
  return sync_finish("openmp");
}
