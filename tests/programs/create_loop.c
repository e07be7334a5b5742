/* create_loop — a thread that creates threads in a loop lets them run
 * before its loop ends (issue 8: a scheduler that cannot be starved).
 *
 * Interleaving this reproduces: main creates threads as fast as it can
 * and stops at the first sign that one of them has run. Natively a new
 * thread gets a CPU within a millisecond or so. Under the shim at 1 P
 * the creator spends nearly all its time inside pthread_create (the shim
 * and glibc), where asynchronous preemption never stops it, and it made
 * no scheduling point: no new thread ran until the loop ended
 * (stress-ng's pthread stressor measured 2.35 s from pthread_create to a
 * thread's first instruction). Now pthread_create ends a time slice that
 * sysmon marked over.
 * stdout: one fixed line. The loop gives up after 5 s or 20,000 threads
 * (a hang detector, not a timing bound); SIGALRM after 60 s. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kMax = 20000 };
static atomic_int started, release;
static pthread_t threads[kMax];
/* Each turn of the loop also spends about a microsecond in libc (a memset
 * of a size the compiler cannot see), so that 20,000 turns outlast a
 * time slice on a fast machine too, without giving asynchronous
 * preemption user code to stop the creator in. */
static char scratch[32768];
static volatile size_t scratch_size = sizeof scratch;

static void* body(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  while (!atomic_load(&release)) usleep(1000);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 64 * 1024);
  double t0 = mnp_now();
  int n = 0;
  while (n < kMax && atomic_load(&started) == 0 && mnp_now() - t0 < 5.0) {
    if (pthread_create(&threads[n], &a, body, NULL) != 0) break;
    memset(scratch, n, scratch_size);
    n++;
  }
  int seen = atomic_load(&started) > 0;
  mnp_check("created", n);
  atomic_store(&release, 1);
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  printf("a new thread ran while its creator was still creating: %s\n", seen ? "yes" : "no");
  return 0;
}
