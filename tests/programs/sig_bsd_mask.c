/* sig_bsd_mask — the BSD and System V signal-mask calls (sigsetmask,
 * sigblock, siggetmask, sighold, sigrelse, sigset, sigignore, sigpause)
 * must agree with sigprocmask, as they do natively. glibc's versions change
 * the mask inside libc; under the runtime the G's recorded mask then went
 * stale: dash clears its mask with sigsetmask(0) after a vfork, blocked
 * everything a moment later, got "everything" back as its old mask and
 * sigsuspended on it for ever (`wait` of a background job never returned).
 *
 * Prints one line per check (compared with the native run). With "sh" it
 * runs /bin/sh (dash on Debian) on that script instead. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

// The calls under test are the deprecated ones.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#define BIT(sig) (1 << ((sig)-1))

static volatile sig_atomic_t usr1;
static void on_usr1(int sig) {
  (void)sig;
  usr1++;
}

static int blocked(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, sig);
}

static void* kicker(void* arg) {
  usleep(50 * 1000);
  pthread_kill(*(pthread_t*)arg, SIGUSR1);
  return NULL;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1 && strcmp(argv[1], "sh") == 0) {
    fflush(NULL);
    execl("/bin/sh", "sh", "-c", "sleep 0.2 & d=$!; sleep 0.05; wait $d; echo wait rc=$?", (char*)NULL);
    perror("execl /bin/sh");
    return 127;
  }
  // Each call before the printf that reports it (argument order is
  // unspecified).
  int old = sigblock(BIT(SIGUSR1));
  int b = blocked(SIGUSR1), g = (siggetmask() & BIT(SIGUSR1)) != 0;
  printf("sigblock: old %d, USR1 blocked %d, siggetmask has it %d\n", old, b, g);
  old = sigsetmask(0);
  b = blocked(SIGUSR1);
  printf("sigsetmask(0): old has USR1 %d, USR1 blocked %d\n", (old & BIT(SIGUSR1)) != 0, b);
  int r = sighold(SIGUSR2);
  printf("sighold: %d, USR2 blocked %d\n", r, blocked(SIGUSR2));
  r = sigrelse(SIGUSR2);
  printf("sigrelse: %d, USR2 blocked %d\n", r, blocked(SIGUSR2));
  errno = 0;
  r = sighold(0);
  printf("sighold(0): %d errno EINVAL %d\n", r, errno == EINVAL);
  printf("sigset(USR1, handler) was SIG_DFL %d\n", sigset(SIGUSR1, on_usr1) == SIG_DFL);
  int was = sigset(SIGUSR1, SIG_HOLD) == on_usr1;
  printf("sigset(USR1, SIG_HOLD) was the handler %d, blocked %d\n", was, blocked(SIGUSR1));
  printf("sigset(USR1, SIG_HOLD) again was SIG_HOLD %d\n", sigset(SIGUSR1, SIG_HOLD) == SIG_HOLD);
  was = sigset(SIGUSR1, on_usr1) == SIG_HOLD;
  printf("sigset(USR1, handler) was SIG_HOLD %d, blocked %d\n", was, blocked(SIGUSR1));
  struct sigaction sa;
  r = sigignore(SIGUSR2);
  printf("sigignore(USR2): %d, ignored %d\n", r, sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
  // sigpause (X/Open under _GNU_SOURCE): waits with USR1 let through, then
  // the mask is what it was (USR1 blocked).
  sighold(SIGUSR1);
  pthread_t self = pthread_self(), k;
  pthread_create(&k, NULL, kicker, &self);
  errno = 0;
  r = sigpause(SIGUSR1);
  int e = errno;
  pthread_join(k, NULL);
  printf("sigpause: %d errno EINTR %d, handler ran %d, USR1 blocked after %d\n", r, e == EINTR, usr1, blocked(SIGUSR1));
  return 0;
}
