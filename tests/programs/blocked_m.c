/* blocked_m — a thread asleep in a system call no wrapper of the shim's sees
 * (the bare syscall instruction) does not keep other threads from running
 * when they become runnable later, from a timer or from an fd
 * (docs/ARCHITECTURE.md, "Uncovered blocking").
 *
 * Under the shim at MNP_PROCS=1 main's kernel thread holds the only P while
 * it sleeps, and sysmon takes the P back only when something wants it
 * (core/sysmon.cpp, still_p_wanted): here nothing does when main begins its
 * sleep; the thread's wake comes afterwards.
 *
 *   timer  a thread sleeps 50 ms (usleep) while main sleeps 1 s bare: the
 *          thread's sleep ends long before main's.
 *   fd     a thread reads an empty pipe while main sleeps 1 s bare; a child
 *          process writes the pipe after 50 ms: the read returns long before
 *          main wakes.
 * Each checks that the thread was done within 500 ms of main's sleep's start
 * (natively about 50 ms). stdout: one "name: ok" line per scenario; "not ok"
 * and details on stderr otherwise (exit 1). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static double done_at;
static int pipe_fds[2];

static void* timer_thread(void* arg) {
  (void)arg;
  usleep(50 * 1000);
  done_at = mnp_now_ms();
  return NULL;
}

static void* fd_thread(void* arg) {
  (void)arg;
  char c;
  if (read(pipe_fds[0], &c, 1) == 1) done_at = mnp_now_ms();
  return NULL;
}

/* Lets t reach its wait: it runs once main yields its P (usleep parks main). */
static void let_run(void) { usleep(10 * 1000); }

static int check(const char* name, double t0) {
  double took = done_at > 0 ? done_at - t0 : -1;
  int ok = took >= 0 && took < 500;
  char d[96];
  snprintf(d, sizeof d, "the thread was done %.0f ms after main began its 1 s sleep", took);
  mnp_report_case(name, ok, d);
  return !ok;
}

static int scenario_timer(void) {
  done_at = 0;
  pthread_t t;
  if (pthread_create(&t, NULL, timer_thread, NULL) != 0) return 1;
  let_run();
  double t0 = mnp_now_ms();
  mnp_bare_sleep_ms(1000);
  pthread_join(t, NULL);
  return check("timer", t0);
}

static int scenario_fd(void) {
  done_at = 0;
  if (pipe(pipe_fds) != 0) return 1;
  pthread_t t;
  if (pthread_create(&t, NULL, fd_thread, NULL) != 0) return 1;
  let_run();
  double t0 = mnp_now_ms();
  pid_t child = fork();
  if (child == 0) {
    usleep(50 * 1000);
    _exit(write(pipe_fds[1], "x", 1) == 1 ? 0 : 1);
  }
  mnp_bare_sleep_ms(1000);
  pthread_join(t, NULL);
  waitpid(child, NULL, 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return check("fd", t0);
}

int main(void) {
  mnp_report_shim();
  int bad = scenario_timer();
  bad |= scenario_fd();
  return bad;
}
