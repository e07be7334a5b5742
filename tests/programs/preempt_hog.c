/* preempt_hog — a CPU hog with no function calls and a ticker that sleeps
 * 5 ms a hundred times. Under the shim at MNP_PROCS=1 the ticker only runs
 * again if sysmon preempts the hog asynchronously (its loop never reaches a
 * scheduling point); the worst gap between ticks is reported as
 * worst_gap_ms (the runner allows 100 ms). Without preemption the program
 * never ends (the runner's timeout catches it).
 *
 * An optional argument IDLE_MS makes main sleep that long first, with no
 * other thread: the process is entirely idle, so sysmon sleeps without a
 * deadline and must be woken when the hog's P gets busy. With "waitpid"
 * instead, main first waits 300 ms for a child in waitpid: its P is
 * retaken while it blocks, and it takes an idle P back on return, which
 * must wake sysmon just the same. With "syscalls" the hog calls getppid
 * (libc's wrapper, which the runtime does not interpose) every 2,000
 * steps: a loop that enters the kernel every few microseconds takes
 * nearly every signal on that call's way out, inside libc, where no G is
 * stopped; before the return hook the ticker's gaps grew to seconds. With
 * "seccomp-probe" main first asks the kernel, as libseccomp does, whether
 * it knows a filter flag: a filter request without a filter (EFAULT, no
 * filter installed), through seccomp(2) and through prctl. The runtime
 * took such a request for a filter coming and turned asynchronous
 * preemption off for good (qemu's vCPU threads then kept every P). */
#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static volatile unsigned long sink;
static int with_syscalls;

static void* hog(void* a) {
  (void)a;
  unsigned long x = 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    if (!with_syscalls) {
      x = x * 6364136223846793005UL + 1442695040888963407UL;
      continue;
    }
    for (int i = 0; i < 2000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    x += (unsigned long)getppid();
  }
  sink = x;
  return NULL;
}

static void* ticker(void* a) {
  (void)a;
  double worst = mnp_worst_tick_gap_ms(100, 5000);
  atomic_store(&stop, 1);
  mnp_check("worst_gap_ms", (long long)worst);
  return NULL;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1 && strcmp(argv[1], "syscalls") == 0) {
    with_syscalls = 1;
  } else if (argc > 1 && strcmp(argv[1], "waitpid") == 0) {
    pid_t c = fork();
    if (c == 0) {
      usleep(300 * 1000);
      _exit(0);
    }
    waitpid(c, NULL, 0);
  } else if (argc > 1 && strcmp(argv[1], "seccomp-probe") == 0) {
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, NULL);
    printf("seccomp probe: %ld %s\n", r, r < 0 && errno == EFAULT ? "EFAULT" : "other");
    r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0);
    printf("prctl probe: %ld %s\n", r, r < 0 && errno == EFAULT ? "EFAULT" : "other");
  } else if (argc > 1) {
    usleep((useconds_t)atoi(argv[1]) * 1000);
  }
  pthread_t h, t;
  pthread_create(&h, NULL, hog, NULL);
  pthread_create(&t, NULL, ticker, NULL);
  pthread_join(t, NULL);
  pthread_join(h, NULL);
  puts("ticker done, hog stopped");
  return 0;
}
