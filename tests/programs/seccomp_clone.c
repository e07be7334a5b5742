/* seccomp_clone — a seccomp filter that lets threads be made only with
 * exactly the clone flags glibc's pthread_create uses, and answers clone3
 * with ENOSYS (so glibc falls back to clone), as Chromium's sandbox does
 * for its renderers and utility processes: the runtime's own kernel
 * threads must pass it too. Until 2026-12-07 the runtime added
 * CLONE_CHILD_SETTID and every sandboxed Chromium child died of SIGSYS.
 *
 * The filter goes in while the process is one thread (as in Chromium's
 * zygote children). Then 4 threads each wait on a process-shared futex
 * word, a call the runtime makes in the kernel with its P handed off, so
 * it needs more kernel threads; main wakes them one by one and joins.
 * stdout: the threads' results. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 4 };

static int g_word[kThreads];
static volatile int g_waiting;

static void* waiter(void* arg) {
  int i = (int)(long)arg;
  __atomic_add_fetch(&g_waiting, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&g_word[i], __ATOMIC_ACQUIRE) == 0)
    syscall(SYS_futex, &g_word[i], FUTEX_WAIT, 0, NULL, NULL, 0);
  return (void*)(long)(i * 10);
}

#define GLIBC_THREAD_FLAGS                                                                           \
  (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | \
   CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

int main(void) {
  mnp_report_shim();
  fflush(NULL);
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* clone: a thread (CLONE_THREAD) only with glibc's flags */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GLIBC_THREAD_FLAGS, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    perror("seccomp");
    return 2;
  }
  pthread_t t[kThreads];
  for (long i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, waiter, (void*)i) != 0) return 3;
  while (__atomic_load_n(&g_waiting, __ATOMIC_SEQ_CST) < kThreads) sched_yield();
  usleep(50 * 1000); /* they are in their waits */
  long sum = 0;
  for (int i = 0; i < kThreads; i++) {
    __atomic_store_n(&g_word[i], 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &g_word[i], FUTEX_WAKE, 1, NULL, NULL, 0);
    void* r;
    pthread_join(t[i], &r);
    sum += (long)r;
  }
  printf("threads made under the filter: %d, results sum %ld\n", kThreads, sum);
  return 0;
}
