/* wire_leader — per-thread kernel state a thread takes on the process's
 * initial kernel thread (the leader), which under the shim also runs other
 * threads while main waits.
 *
 * Each round, main starts one thread and joins it; at MNP_PROCS=1 that
 * thread runs on the leader's kernel thread (main's, parked in the join).
 *   pdeath  the thread forks a child that sets PR_SET_PDEATHSIG (SIGTERM),
 *           then ends unreaped: the kernel signals the child when the
 *           forking kernel thread ends. The runtime never ends the leader,
 *           so before the forking thread moved off it the child waited in
 *           pause() for ever. The child stays one kernel thread after
 *           its prctl and a sleep, as natively.
 *   name    the thread sets its name (PR_SET_NAME) and ends: the leader's
 *           name, the one ps shows for the process, stays main's.
 *   altstack-name  the same for a thread that enables an alternate signal
 *           stack first, as every Rust thread does (it is then wired
 *           already when it names itself).
 * An argument (pdeath, name or altstack-name) runs that scenario alone: the first to
 * leave its state on the leader keeps the other off it.
 * Stdout: one line per scenario, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static pid_t child;
static int child_threads_ok;

static void* forker(void* a) {
  (void)a;
  int p[2];
  if (pipe(p) != 0) return NULL;
  pid_t parent = getpid();
  child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(3); /* the forking thread ended already */
    /* The child is one thread, as natively, after that prctl and a sleep
     * (a fork child that sets such state before it execs). */
    usleep(1000);
    if (write(p[1], mnp_kernel_threads() == 1 ? "x" : "n", 1) != 1) _exit(4);
    for (;;) pause();
  }
  char c = 0;
  if (child > 0 && read(p[0], &c, 1) != 1) child = -1; /* the child has its signal set */
  child_threads_ok = c == 'x';
  close(p[0]);
  close(p[1]);
  return NULL;
}

static void* namer(void* a) {
  prctl(PR_SET_NAME, (const char*)a);
  usleep(1000);
  return NULL;
}

/* As every Rust thread starts: an alternate signal stack, then a name. */
static void* altstack_namer(void* a) {
  static char stack[3][64 * 1024];
  static int next;
  stack_t ss = {.ss_sp = stack[next++ % 3], .ss_size = sizeof stack[0], .ss_flags = 0};
  sigaltstack(&ss, NULL);
  prctl(PR_SET_NAME, (const char*)a);
  usleep(1000);
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  return NULL;
}

static void leader_name(char* out, size_t cap) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/%d/comm", (int)getpid());
  if (mnp_read_small_file(path, buf, sizeof buf) < 0) buf[0] = 0;
  buf[strcspn(buf, "\n")] = 0;
  snprintf(out, cap, "%s", buf);
}

/* The child's status, or -1 if it is still there after 5 s. */
static int reap_within_5s(pid_t pid) {
  for (int i = 0; i < 500; i++) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0) return -1;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* One round of each: 1 if the state behaved as natively. */
static int pdeath_round(int round) {
  pthread_t t;
  pthread_create(&t, NULL, forker, NULL);
  pthread_join(t, NULL);
  int st = child > 0 ? reap_within_5s(child) : -1;
  if (!child_threads_ok) fprintf(stderr, "round %d: the child had more than one kernel thread\n", round);
  if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && child_threads_ok) return 1;
  fprintf(stderr, "round %d: child %s\n", round, st == -1 ? "not signalled within 5 s" : "ended otherwise");
  return 0;
}

static int name_round(int round, const char* before, int altstack) {
  pthread_t t;
  char after[64];
  pthread_create(&t, NULL, altstack ? altstack_namer : namer, "wl-renamed");
  pthread_join(t, NULL);
  leader_name(after, sizeof after);
  if (strcmp(before, after) == 0) return 1;
  fprintf(stderr, "round %d: the leader is named %s, was %s\n", round, after, before);
  return 0;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  alarm(30);
  int pdeath = argc < 2 || strcmp(argv[1], "pdeath") == 0, name = argc < 2 || strcmp(argv[1], "name") == 0;
  int altname = argc < 2 || strcmp(argv[1], "altstack-name") == 0;
  int pdeath_ok = 1, name_ok = 1;
  char before[64];
  leader_name(before, sizeof before);
  for (int round = 0; round < 3; round++) {
    if (pdeath) pdeath_ok &= pdeath_round(round);
    if (name) name_ok &= name_round(round, before, 0);
    if (altname) name_ok &= name_round(round, before, 1);
  }
  if (pdeath) mnp_report_case("pdeath", pdeath_ok, "");
  if (name || altname) mnp_report_case("leader name", name_ok, "");
  mnp_check("kthreads_max", mnp_kernel_threads());
  return 0;
}
