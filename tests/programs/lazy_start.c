/* lazy_start — a process that starts out with one thread, where under the
 * shim the runtime has started nothing yet: no sysmon thread, no handler of
 * its own for the runtime's signal, no second kernel thread, and a blocking
 * call of the only thread is made directly by that thread
 * (docs/ARCHITECTURE.md, "Start-up" and "Blocking calls": the direct path).
 *
 * Each scenario runs in a fresh process: main re-executes this program with
 * the scenario's name (fork + execve of /proc/self/exe), so each one begins
 * as a new process would. A constructor makes one real thread N before main
 * (under the shim a plain glibc thread, since the runtime starts at main),
 * which acts on main from outside when main asks it to.
 *
 *   mask      main blocks every signal, then creates a thread and sleeps
 *             1 s in a system call no wrapper sees (the bare syscall
 *             instruction): the thread runs meanwhile. At MNP_PROCS=1 it
 *             runs only once sysmon's signal has found main's kernel thread
 *             asleep (docs/ARCHITECTURE.md, "Uncovered blocking"): the
 *             runtime's signal, installed after main's mask was set, must
 *             not stay blocked there. Run with MNP_PREEMPT=0, so that no
 *             later mask change (libunwind's, loaded for preemption) hides
 *             a stale one.
 *   signalfd  main blocks SIGUSR1 and polls a signalfd for it (5 s); N sends
 *             SIGUSR1 to main with pthread_kill: the poll returns 1 and the
 *             read gives SIGUSR1 (the signal is main's, kept for it by the
 *             runtime under the shim, which the kernel's poll cannot see).
 *   affinity  main pins itself to one CPU, then creates a thread with the
 *             whole mask it started with: that thread's kernel thread has
 *             the whole mask (under the shim, main is wired and a new kernel
 *             thread is made by sysmon, which must not inherit main's mask).
 *   kill      main reads an empty pipe; N sends SIGUSR2 (a handler without
 *             SA_RESTART) to main with pthread_kill every 150 ms until main
 *             is back: the read fails with EINTR after the handler ran.
 *   cancel    main reads an empty pipe with a cleanup handler pushed; N
 *             creates a thread that cancels main: main's cleanup handler
 *             runs and that thread reports and ends the process.
 * A machine with one CPU prints the affinity line without the check.
 * stdout: one "name: ok" line per scenario; "not ok" and details on stderr
 * otherwise (exit 1). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

/* ---- N: a real thread made before main ----------------------------------- */

enum { kNone, kKillUsr1, kKillUsr2, kCancel };
static atomic_int n_command;
static pthread_t main_thread;
static pthread_t n_thread;

static atomic_int cleanup_ran;

static void* canceller(void* arg) {
  (void)arg;
  int r = pthread_cancel(main_thread);
  double t0 = mnp_now_ms();
  while (!atomic_load(&cleanup_ran) && mnp_now_ms() - t0 < 5000) usleep(1000);
  char d[64];
  snprintf(d, sizeof d, "pthread_cancel=%d cleanup_ran=%d", r, atomic_load(&cleanup_ran));
  mnp_report_case("cancel", r == 0 && atomic_load(&cleanup_ran), d);
  exit(r == 0 && atomic_load(&cleanup_ran) ? 0 : 1);
}

static void* n_main(void* arg) {
  (void)arg;
  for (;;) {
    int c = atomic_load(&n_command);
    if (c == kNone) {
      usleep(1000);
      continue;
    }
    usleep(150 * 1000); /* main is in its call by then, or the call sees it at once */
    if (c == kKillUsr1) pthread_kill(main_thread, SIGUSR1);
    if (c == kCancel) {
      pthread_t t;
      if (pthread_create(&t, NULL, canceller, NULL) != 0) _exit(2);
    }
    /* Again until main has seen it: one that comes before main's read
     * only runs the handler. */
    if (c == kKillUsr2) {
      pthread_kill(main_thread, SIGUSR2);
      continue;
    }
    atomic_store(&n_command, kNone);
  }
  return NULL;
}

__attribute__((constructor)) static void make_n(void) {
  if (pthread_create(&n_thread, NULL, n_main, NULL) != 0) _exit(2);
  pthread_detach(n_thread);
}

/* ---- scenarios ----------------------------------------------------------- */

static double ran_at;
static void* note_run(void* arg) {
  (void)arg;
  ran_at = mnp_now_ms();
  return NULL;
}

static int scenario_mask(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, note_run, NULL) != 0) return 1;
  double t0 = mnp_now_ms();
  mnp_bare_sleep_ms(1000);
  double woke = mnp_now_ms();
  pthread_join(t, NULL);
  int ok = ran_at > 0 && ran_at < woke;
  char d[96];
  snprintf(d, sizeof d, "the thread ran %.0f ms after main began its 1 s sleep", ran_at - t0);
  mnp_report_case("mask", ok, d);
  return !ok;
}

static int scenario_signalfd(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_BLOCK, &s, NULL);
  int fd = signalfd(-1, &s, SFD_CLOEXEC);
  if (fd < 0) return 1;
  atomic_store(&n_command, kKillUsr1);
  struct pollfd p = {fd, POLLIN, 0};
  double t0 = mnp_now_ms();
  int r = poll(&p, 1, 5000);
  double ms = mnp_now_ms() - t0;
  struct signalfd_siginfo si;
  memset(&si, 0, sizeof si);
  ssize_t n = r == 1 ? read(fd, &si, sizeof si) : -1;
  int ok = r == 1 && (p.revents & POLLIN) && n == (ssize_t)sizeof si && si.ssi_signo == SIGUSR1;
  char d[128];
  snprintf(d, sizeof d, "poll=%d revents=%#x after %.0f ms, read=%zd signo=%u", r, p.revents, ms, n, si.ssi_signo);
  mnp_report_case("signalfd", ok, d);
  return !ok;
}

static char want_cpus[256], got_cpus[256];

static void cpus_allowed(char* out, size_t n) {
  char buf[8192];
  out[0] = 0;
  if (mnp_read_small_file("/proc/thread-self/status", buf, sizeof buf) < 0) return;
  const char* p = strstr(buf, "Cpus_allowed_list:");
  if (!p) return;
  p += strlen("Cpus_allowed_list:");
  while (*p == ' ' || *p == '\t') p++;
  size_t i = 0;
  while (p[i] && p[i] != '\n' && i + 1 < n) {
    out[i] = p[i];
    i++;
  }
  out[i] = 0;
}

static void* read_cpus(void* arg) {
  (void)arg;
  cpus_allowed(got_cpus, sizeof got_cpus);
  return NULL;
}

static int scenario_affinity(void) {
  cpu_set_t whole, one;
  if (sched_getaffinity(0, sizeof whole, &whole) != 0) return 1;
  if (CPU_COUNT(&whole) < 2) {
    mnp_report_case("affinity", 1, "");
    return 0;
  }
  cpus_allowed(want_cpus, sizeof want_cpus);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &whole)) {
      CPU_SET(c, &one);
      break;
    }
  if (sched_setaffinity(0, sizeof one, &one) != 0) return 1;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setaffinity_np(&a, sizeof whole, &whole);
  pthread_t t;
  if (pthread_create(&t, &a, read_cpus, NULL) != 0) return 1;
  pthread_join(t, NULL);
  int ok = strcmp(want_cpus, got_cpus) == 0;
  char d[600];
  snprintf(d, sizeof d, "the thread's kernel thread allows CPUs '%s', the process started with '%s'", got_cpus,
           want_cpus);
  mnp_report_case("affinity", ok, d);
  return !ok;
}

static atomic_int usr2_ran;
static void on_usr2(int sig) {
  (void)sig;
  atomic_store(&usr2_ran, 1);
}

static int scenario_kill(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2; /* no SA_RESTART */
  sigaction(SIGUSR2, &sa, NULL);
  int pfd[2];
  if (pipe(pfd) != 0) return 1;
  atomic_store(&n_command, kKillUsr2);
  alarm(5); /* a read that is never interrupted ends the process */
  char c;
  ssize_t r = read(pfd[0], &c, 1);
  int e = errno;
  atomic_store(&n_command, kNone);
  alarm(0);
  int ok = r == -1 && e == EINTR && atomic_load(&usr2_ran);
  char d[96];
  snprintf(d, sizeof d, "read=%zd errno=%d handler ran=%d", r, r < 0 ? e : 0, atomic_load(&usr2_ran));
  mnp_report_case("kill", ok, d);
  return !ok;
}

static void note_cleanup(void* arg) {
  (void)arg;
  atomic_store(&cleanup_ran, 1);
}

static int scenario_cancel(void) {
  int pfd[2];
  if (pipe(pfd) != 0) return 1;
  alarm(5); /* a read that is never cancelled ends the process */
  atomic_store(&n_command, kCancel);
  char c;
  pthread_cleanup_push(note_cleanup, NULL);
  (void)!read(pfd[0], &c, 1);
  pthread_cleanup_pop(0);
  mnp_report_case("cancel", 0, "read returned");
  return 1;
}

int main(int argc, char** argv) {
  main_thread = pthread_self();
  if (argc == 2) {
    if (!strcmp(argv[1], "mask")) return scenario_mask();
    if (!strcmp(argv[1], "signalfd")) return scenario_signalfd();
    if (!strcmp(argv[1], "affinity")) return scenario_affinity();
    if (!strcmp(argv[1], "kill")) return scenario_kill();
    if (!strcmp(argv[1], "cancel")) return scenario_cancel();
    return 2;
  }
  mnp_report_shim();
  static const char* const kScenarios[] = {"mask", "signalfd", "affinity", "kill", "cancel"};
  int failures = 0;
  for (size_t i = 0; i < sizeof kScenarios / sizeof kScenarios[0]; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      if (!strcmp(kScenarios[i], "mask")) setenv("MNP_PREEMPT", "0", 1);
      execl("/proc/self/exe", "lazy_start", kScenarios[i], (char*)NULL);
      _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "FAIL %s: status %#x\n", kScenarios[i], st);
      failures++;
    }
  }
  return failures ? 1 : 0;
}
