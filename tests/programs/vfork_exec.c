/* vfork_exec — vfork children that exec (or fail to), then a CPU hog and a
 * ticker at MNP_PROCS=1.
 *
 * A vfork child runs in its parent's memory until it execs or exits, but it
 * is another process. The shim's exec interposer once counted the child's
 * exec in the parent's memory (the count that stops the runtime's signal
 * around an exec) and nothing ever took it back, since the exec replaced
 * only the child: the parent's sysmon then sent no signal again, so a G that
 * never reaches a scheduling point kept its P for good. CPython's
 * subprocess vforks, and a multiprocessing pool hung this way at 1 P.
 *
 * Its signal calls did the same: CPython blocks every signal around vfork
 * and the child sets its own mask before it execs. The child's
 * pthread_sigmask rewrote the parent G's recorded mask, so the parent's
 * restore looked like a no-op and its kernel thread kept every signal
 * blocked (SIGCHLD then never reached CPython's forkserver), and the
 * child's signal(SIGUSR1, SIG_DFL) replaced the parent's handler.
 *
 * Here five children exec /bin/true and one execs a path that does not
 * exist (its exec returns, the child _exits 127). One more does what
 * CPython does with the mask and also resets SIGUSR1 before it execs; the
 * parent then signals itself with SIGUSR1, and its handler must run.
 * Then a call-free hog and
 * a ticker run: at 1 P only asynchronous preemption lets the ticker finish,
 * and the hog stops when it does. alarm(20) ends a hang (exit by SIGALRM,
 * which the runner reports as a mismatch with the native run). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static volatile unsigned long sink;

static void* hog(void* a) {
  (void)a;
  unsigned long x = 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) x = x * 6364136223846793005UL + 1442695040888963407UL;
  sink = x;
  return NULL;
}

static void* ticker(void* a) {
  (void)a;
  for (int i = 0; i < 20; i++) usleep(5000);
  atomic_store(&stop, 1);
  return NULL;
}

/* vforks a child that execs path; returns its exit status, or -1. */
static int vfork_exec(const char* path) {
  pid_t c = vfork();
  if (c == 0) {
    execl(path, path, (char*)NULL);
    _exit(127);
  }
  if (c < 0) return -1;
  int st = 0;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) {
  (void)sig;
  got_usr1 = 1;
}

/* The CPython pattern: every signal blocked around vfork, the child's own
 * mask and dispositions set before its exec. Returns the child's status. */
static int vfork_exec_masked(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pid_t c = vfork();
  if (c == 0) {
    signal(SIGUSR1, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    execl("/bin/true", "true", (char*)NULL);
    _exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  /* The kernel's mask of the thread running this one now: SIGCHLD and
   * SIGUSR1 must be open again, as they are in the restored mask. */
  char buf[4096];
  const char* blk =
      mnp_read_small_file("/proc/thread-self/status", buf, sizeof buf) > 0 ? strstr(buf, "SigBlk:") : NULL;
  unsigned long long k = blk ? strtoull(blk + 7, NULL, 16) : ~0ULL;
  printf("vfork with masks: kernel blocks SIGCHLD=%d SIGUSR1=%d after the restore\n", (int)((k >> (SIGCHLD - 1)) & 1),
         (int)((k >> (SIGUSR1 - 1)) & 1));
  int st = 0;
  if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

int main(void) {
  mnp_report_shim();
  alarm(20);
  int ok = 0;
  for (int i = 0; i < 5; i++) ok += vfork_exec("/bin/true") == 0;
  int missing = vfork_exec("/nonexistent/mnp-vfork-exec");
  printf("vfork: exec'd=%d of 5, failed exec exit=%d\n", ok, missing);
  signal(SIGUSR1, on_usr1);
  int masked = vfork_exec_masked();
  kill(getpid(), SIGUSR1);
  for (int i = 0; i < 500 && !got_usr1; i++) usleep(10000);
  printf("vfork with masks: child exit=%d, parent's SIGUSR1 handler ran=%d\n", masked, (int)got_usr1);
  fflush(stdout);
  pthread_t h, t;
  pthread_create(&h, NULL, hog, NULL);
  pthread_create(&t, NULL, ticker, NULL);
  pthread_join(t, NULL);
  pthread_join(h, NULL);
  puts("ticker done, hog stopped");
  return 0;
}
