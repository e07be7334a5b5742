/* io_poll_few — in a process with no more threads than Ps, a signal sent to
 * the process ends a poll-family wait with EINTR only after its handler ran
 * (docs/ARCHITECTURE.md, "Blocking calls": the few-threads path).
 *
 * Interleaving this reproduces: main waits in epoll_wait, poll or select on
 * an idle pipe (no mask: the signal is open in main and blocked in the only
 * other thread, which sleeps in usleep). A child process sends SIGUSR1 to
 * the process 0 to 300 us after a thread of it has entered main's call
 * (/proc/PID/task/TID/syscall: number and first argument), or after 1 ms
 * where main parks on the netpoller instead (1 P). A call the sender did not
 * see may also time out after the handler ran (the signal may have come
 * before it began, as natively); a call it saw must end with EINTR. Natively only main lets
 * it in: the call fails with EINTR after the handler ran once. Under the shim
 * at 2 Ps main makes the real call with its P idle, and an idle kernel
 * thread of the runtime's may take the signal from the kernel after the
 * kernel woke main's call for it: the call returned EINTR before any
 * handler had run (1 call in ~250), and the handler ran during the next
 * call; or, for poll and select, the kernel restarted the call itself, and
 * the handler sysmon's kick ran just as the restart re-entered the kernel
 * left the call waiting out its timeout (1 run in ~40). At 1 P the same
 * program takes the netpoller's path.
 * Each wait has a 500 ms timeout, so a lost signal shows as a timeout
 * rather than as a hang. stdout: one line per call. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kCycles = 300, kCalls = 3 };

static atomic_int g_handled;
static atomic_int g_stop;

static void on_signal(int s) {
  (void)s;
  atomic_fetch_add(&g_handled, 1);
}

/* 1 if some thread of process pid is in a poll-family system call whose
 * first argument is arg0 (the epoll fd, the pollfd array, select's nfds):
 * the program's own call, not a runtime thread's epoll_wait. */
static int in_poll_call(int pid, unsigned long arg0) {
  static const int kNrs[] = {7, 23, 232, 270, 271, 281, 441}; /* x86-64 */
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/task", pid);
  DIR* d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  for (struct dirent* e; !found && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[384], buf[512];
    snprintf(path, sizeof path, "%s/%s/syscall", dir, e->d_name);
    if (mnp_read_small_file(path, buf, sizeof buf) <= 0) continue;
    char* end;
    long nr = strtol(buf, &end, 10);
    unsigned long a0 = strtoul(end, NULL, 16);
    for (size_t i = 0; i < sizeof kNrs / sizeof *kNrs; i++)
      if (nr == kNrs[i] && a0 == arg0) found = 1;
  }
  closedir(d);
  return found;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The sender: for each first argument read from `go`, waits until the
 * parent sits in that call (or 1 ms: a G parked on the runtime's netpoller
 * is in no call of its own), spins 0-300 us more, and sends SIGUSR1 to the
 * parent. */
static void sender(int go, int back, int parent) {
  unsigned long arg0;
  for (int i = 0; read(go, &arg0, sizeof arg0) == sizeof arg0; i++) {
    double give_up = now_ms() + 1;
    int seen;
    while (!(seen = in_poll_call(parent, arg0)) && now_ms() < give_up) usleep(20);
    double spin_end = now_ms() + (i * 37) % 301 / 1000.0;
    while (now_ms() < spin_end) {
    }
    kill(parent, SIGUSR1);
    if (write(back, seen ? "s" : "g", 1) != 1) break;
  }
  _exit(0);
}

static void* idler(void* a) {
  (void)a;
  while (!atomic_load(&g_stop)) usleep(2000);
  return NULL;
}

static const char* const kNames[kCalls] = {"epoll_wait", "poll", "select"};

int main(void) {
  mnp_report_shim();
  alarm(60);
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* inherited by the idler */
  pthread_t t;
  if (pthread_create(&t, NULL, idler, NULL) != 0) return 2;
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  int p[2];
  if (pipe(p) != 0) return 2;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  int go[2], back[2];
  if (pipe(go) != 0 || pipe(back) != 0) return 2;
  int parent = getpid();
  pid_t child = fork();
  if (child < 0) return 3;
  if (child == 0) {
    close(go[1]);
    close(back[0]);
    sender(go[0], back[1], parent);
  }
  close(go[0]);
  close(back[1]);
  int good[kCalls] = {0};
  int seen_calls = 0;
  for (int i = 0; i < kCycles * kCalls; i++) {
    int call = i % kCalls;
    int before = atomic_load(&g_handled);
    struct pollfd pf = {p[0], POLLIN, 0};
    unsigned long arg0 = call == 0 ? (unsigned long)ep : call == 1 ? (unsigned long)&pf : (unsigned long)p[0] + 1;
    if (write(go[1], &arg0, sizeof arg0) != sizeof arg0) return 4;
    int rv;
    if (call == 0) {
      struct epoll_event e;
      rv = epoll_wait(ep, &e, 1, 500);
    } else if (call == 1) {
      rv = poll(&pf, 1, 500);
    } else {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(p[0], &r);
      struct timeval tv = {0, 500000};
      rv = select(p[0] + 1, &r, NULL, NULL, &tv);
    }
    int err = errno;
    char seen = 0;
    if (read(back[0], &seen, 1) != 1) return 5;
    int seen_in_call = seen == 's';
    seen_calls += seen_in_call;
    int after = atomic_load(&g_handled);
    if (rv == -1 && err == EINTR && after == before + 1) {
      good[call]++;
    } else if (rv == 0 && after == before + 1 && !seen_in_call) {
      /* The sender did not see the call (a G parked on the netpoller) and
       * may have sent before it began: the handler ran, the call then
       * timed out, as natively for a signal that comes before the call. */
      good[call]++;
    } else {
      fprintf(stderr, "%s: rv %d errno %d, handler ran %d times\n", kNames[call], rv, err, after - before);
      usleep(10000); /* a late handler would count against the next call */
    }
  }
  close(go[1]);
  waitpid(child, NULL, 0);
  mnp_check("calls_seen_in_kernel", seen_calls);
  for (int c = 0; c < kCalls; c++) printf("%s: %d of %d calls EINTR after the handler\n", kNames[c], good[c], kCycles);
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  return 0;
}
