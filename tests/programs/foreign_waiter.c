/* foreign_waiter — a thread that is no G waits on a program's futex lock
 * behind a thread that is one, and the lock's holder keeps its CPU busy.
 *
 * The shim's own threads are such waiters: glibc's pthread_create, making
 * a kernel thread for the runtime, calls the program's calloc, and a
 * program allocator's lock waits through syscall(SYS_futex) (Chromium).
 * The shim once gave the unlock's one wake-up to the waiting G, which
 * needed a P that nobody freed, and the foreign waiter slept for good.
 * Here the foreign waiter is a thread a constructor makes before the shim
 * runs main, and the holder spins with preemption off (the program runs
 * itself again with MNP_PREEMPT=0; natively the variable means nothing).
 * The kernel may wake either waiter natively; both get the lock in turn.
 * Stdout: who got the lock, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_uint lock_word; /* 0 free, 1 held, 2 held with waiters */
static atomic_int go, foreign_tid, foreign_got, g_got;
static pthread_t foreign;

static void lock(void) {
  unsigned z = 0;
  if (atomic_compare_exchange_strong(&lock_word, &z, 1)) return;
  while (atomic_exchange(&lock_word, 2) != 0)
    syscall(SYS_futex, &lock_word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, NULL, NULL, 0);
}
static void unlock(void) {
  if (atomic_exchange(&lock_word, 0) == 2)
    syscall(SYS_futex, &lock_word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static void* foreign_main(void* a) {
  (void)a;
  atomic_store(&foreign_tid, (int)syscall(SYS_gettid));
  while (!atomic_load(&go)) mnp_bare_sleep_ms(1);
  lock();
  atomic_store(&foreign_got, 1);
  unlock();
  return NULL;
}

static void* g_main(void* a) {
  (void)a;
  lock();
  atomic_store(&g_got, 1);
  unlock();
  return NULL;
}

__attribute__((constructor)) static void early(int argc, char** argv) {
  (void)argc;
  if (!getenv("MNP_PREEMPT")) {
    setenv("MNP_PREEMPT", "0", 1);
    execv("/proc/self/exe", argv);
    _exit(111);
  }
  if (pthread_create(&foreign, NULL, foreign_main, NULL) != 0) _exit(112);
}

/* 1 once the thread `tid` sleeps in a futex wait. */
static int in_futex_wait(int tid) {
  char path[64], buf[128];
  snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
  long n = mnp_read_small_file(path, buf, sizeof buf);
  return n > 0 && strstr(buf, "futex") != NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  while (!atomic_load(&foreign_tid)) mnp_bare_sleep_ms(1);
  lock();
  pthread_t g;
  if (pthread_create(&g, NULL, g_main, NULL) != 0) return 1;
  /* The G waits first (parked, or in the kernel natively), then the
   * foreign thread, in the kernel. */
  while (atomic_load(&lock_word) != 2) mnp_bare_sleep_ms(1);
  mnp_bare_sleep_ms(20);
  atomic_store(&go, 1);
  while (!in_futex_wait(atomic_load(&foreign_tid))) mnp_bare_sleep_ms(1);
  unlock();
  /* Busy, as a holder that runs on: no call that could give the P away. */
  double end = mnp_now() + 3;
  while (!atomic_load(&foreign_got) && mnp_now() < end) {
  }
  int got = atomic_load(&foreign_got);
  pthread_join(g, NULL);
  pthread_join(foreign, NULL);
  printf("foreign waiter %s; G waiter got it: %d\n", got ? "got the lock while the holder ran" : "starved",
         atomic_load(&g_got));
  return got ? 0 : 1;
}
