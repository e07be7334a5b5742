/* seccomp_kill — a seccomp filter that kills the process on readv, writev,
 * preadv2 and pwritev2 (sshd's pre-auth sandbox allows read and writev but
 * kills readv): the program's own read and write must still work, as they
 * do natively. The runtime turned read into readv (and tried preadv2 with
 * RWF_NOWAIT first) and write into writev, and sshd's child died of SIGSYS
 * at every login. A second thread exists, so the runtime's multi-thread
 * paths are the ones taken; it writes the pipe main blocks on.
 * stdout: what was read. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mnp_check.h"

static int p[2];

static void* late_writer(void* arg) {
  (void)arg;
  usleep(20 * 1000);
  if (write(p[1], "late", 4) != 4) perror("write");
  return NULL;
}

#define KILL_IF(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

int main(void) {
  mnp_report_shim();
  fflush(NULL);
  int q[2];
  if (pipe(p) != 0 || pipe(q) != 0) return 1;
  pthread_t t;
  pthread_create(&t, NULL, late_writer, NULL);
  struct sock_filter f[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                            KILL_IF(__NR_readv),
                            KILL_IF(__NR_writev),
                            KILL_IF(__NR_preadv2),
                            KILL_IF(__NR_pwritev2),
                            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    perror("seccomp");
    return 2;
  }
  char b[16] = {0};
  ssize_t n = read(p[0], b, sizeof b - 1);  // blocks until the other thread writes
  printf("read %zd bytes: %s\n", n, b);
  if (write(q[1], "own", 3) != 3) return 3;
  memset(b, 0, sizeof b);
  n = read(q[0], b, sizeof b - 1);
  printf("read %zd bytes: %s\n", n, b);
  pthread_join(t, NULL);
  return 0;
}
