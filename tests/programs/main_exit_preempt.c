/* main_exit_preempt — main calls pthread_exit while another thread spins;
 * main's thread-specific destructor then computes 400 ms without a call
 * into the runtime. Under the shim at MNP_PROCS=1 the exiting main G and
 * the spinner share the one P: sysmon must preempt the main G in its
 * destructor as it does any G, which needs the stack walk to reach a base
 * frame of the main G's exit (shim/init.cpp's main_g_exit). When the walk
 * could not, the runtime took the main G for one stuck in a system call
 * and handed its P to a new M: two Gs ran at once on one P, and the
 * process grew a kernel thread (threads_grew=1). Reports the kernel
 * threads the destructor's run added (0 natively and under the shim). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static atomic_long spins;

static void* spinner(void* a) {
  (void)a;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
  return NULL;
}

static void destructor(void* v) {
  (void)v;
  long long before = mnp_kernel_threads();
  double end = mnp_now() + 0.4;
  volatile unsigned long x = 1;
  while (mnp_now() < end) x = x * 6364136223846793005UL + 1;
  long long after = mnp_kernel_threads();
  atomic_store(&stop, 1);
  mnp_check("threads_grew", after - before);
  printf("destructor done, spinner ran: %d\n", atomic_load(&spins) > 0);
  fflush(stdout);
}

int main(void) {
  mnp_report_shim();
  pthread_key_t key;
  pthread_key_create(&key, destructor);
  pthread_setspecific(key, (void*)1);
  pthread_t t;
  pthread_create(&t, NULL, spinner, NULL);
  usleep(1000);
  pthread_exit(NULL);
}
