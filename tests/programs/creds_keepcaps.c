/* creds_keepcaps — what setpriv --reuid=U --regid=G does, in a single-
 * threaded child: PR_SET_KEEPCAPS, setresuid to an unprivileged user
 * (capabilities kept in the permitted set), capset to raise them again,
 * then setresgid.
 *
 * glibc's set*id functions apply the change to every thread of the
 * process (SIGSETXID) and abort when one thread succeeds and another
 * fails. Under the shim, the interposed prctl used to start sysmon (a
 * kernel thread) before wiring the caller; sysmon kept no capabilities
 * after the setresuid and its setresgid failed with EPERM: setpriv, and
 * so the postgres matrix case, died of SIGABRT. Credentials are now set
 * on the caller's thread before sysmon exists, which inherits them.
 *
 * Also: a thread's capget naming itself by its own id (gettid()) reads
 * its own sets, as the kernel's does; under the shim a G's id named no
 * kernel thread (ESRCH) until the interposer passed it as 0.
 *
 * Needs root (as CI runs); otherwise prints that it skipped. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static int child(void) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return 10;
  if (setresuid(65534, 65534, 65534) != 0) return 11;
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) != 0) return 12;
  d[0].effective = d[0].permitted;
  d[1].effective = d[1].permitted;
  if (syscall(SYS_capset, &h, d) != 0) return 13;
  if (setresgid(65534, 65534, 65534) != 0) return 14;
  gid_t r, e, s;
  if (getresgid(&r, &e, &s) != 0 || r != 65534 || e != 65534 || s != 65534) return 15;
  return 0;
}

static void* capget_self(void* arg) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, (int)syscall(SYS_gettid)};
  struct __user_cap_data_struct d[2];
  *(int*)arg = (int)syscall(SYS_capget, &h, d) == 0 && (d[0].effective & (1u << CAP_SETUID)) != 0;
  return NULL;
}

int main(void) {
  mnp_report_shim();
  if (geteuid() != 0) {
    puts("not root: skipped");
    return 0;
  }
  int own = -1;
  pthread_t t;
  pthread_create(&t, NULL, capget_self, &own);
  pthread_join(t, NULL);
  printf("thread's capget of its own id: %s\n", own == 1 ? "its sets" : "failed");
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) _exit(child());
  int st = 0;
  waitpid(c, &st, 0);
  if (WIFSIGNALED(st)) printf("child killed by signal %d\n", WTERMSIG(st));
  else printf("child exit %d\n", WEXITSTATUS(st));
  return 0;
}
