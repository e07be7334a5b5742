/* uring_issuer — an io_uring only its creating thread may submit to
 * (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, as fio 3.33
 * makes them), and a registered ring fd (IORING_REGISTER_RING_FDS: a table
 * of the calling kernel thread's), both through syscall(). A thread that
 * moved to another kernel thread between its calls got EEXIST, or EINVAL
 * for the registered fd (fio ended its jobs early with no error). Each of
 * 4 threads makes its ring and enters it 500 times, sleeping and yielding
 * in between so that Gs move between Ms. Stdout: the error counts, 0
 * natively; a kernel without these flags prints the same skip line both
 * ways. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

#define THREADS 4
#define ENTERS 500

static int errors[THREADS][2];
static int unsupported;

static void* worker(void* arg) {
  long id = (long)arg;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int fd = (int)syscall(SYS_io_uring_setup, 8, &p);
  if (fd < 0) {
    __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  struct io_uring_rsrc_update reg;
  memset(&reg, 0, sizeof reg);
  reg.offset = (unsigned)-1; /* any free slot */
  reg.data = (unsigned long)fd;
  int slot = syscall(SYS_io_uring_register, fd, IORING_REGISTER_RING_FDS, &reg, 1) == 1 ? (int)reg.offset : -1;
  if (slot < 0) __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < ENTERS; i++) {
    if (syscall(SYS_io_uring_enter, fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0) < 0) errors[id][0]++;
    if (slot >= 0 &&
        syscall(SYS_io_uring_enter, slot, 0, 0, IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING, NULL, 0) < 0)
      errors[id][1]++;
    if (i % 10 == 0) usleep(100);
    else sched_yield();
  }
  close(fd);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  if (unsupported) {
    printf("skip: this kernel makes no single-issuer ring or registered ring fd\n");
    return 0;
  }
  for (int i = 0; i < THREADS; i++)
    printf("thread %d: enter errors %d, registered-fd errors %d\n", i, errors[i][0], errors[i][1]);
  return 0;
}
