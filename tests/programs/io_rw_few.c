/* io_rw_few — blocking reads and writes between two threads while main
 * waits in pthread_join: no more running threads than Ps at 2 Ps, where the
 * runtime makes the real read or write with its P idle instead of parking
 * the G on the netpoller (docs/ARCHITECTURE.md, "Blocking calls": the
 * few-threads path), as long as every handler of the program's has
 * SA_RESTART.
 *
 * 1. Ping-pong: 2,000 round trips of one byte through two pipes, then
 *    through a socketpair, each checked byte by byte.
 * 2. A reader blocked in read() on an empty pipe while SIGALRM, open only
 *    in the reader, arrives 3 times with an SA_RESTART handler: the read is
 *    restarted each time (natively the kernel does it) and returns the
 *    byte written after the third handler ran; no EINTR. Under the shim an
 *    idle kernel thread of the runtime's may take the signal first and the
 *    handler then runs in the reader through sysmon's kick, whose own
 *    SA_RESTART restarts the read.
 * 3. The same with a handler without SA_RESTART: the read fails with EINTR
 *    (the runtime parks such reads on the netpoller, which ends them with
 *    EINTR after the handler).
 * 4. A reader blocked in read() while main (busy-waiting, so that no
 *    timer sends the read to the netpoller) changes SIGUSR1's handler from
 *    one with SA_RESTART to one without (sigaction; then siginterrupt) and
 *    sends it with pthread_kill: natively the read fails with EINTR. The
 *    runtime had made the read for real when it began, and sysmon's kick
 *    restarted it after the handler: the reader stayed blocked (a
 *    read-only review's repro, 2 runs of 6).
 * 5. A write into a full pipe blocks until the reader drains it; the byte
 *    count arrives whole.
 * stdout: one line per part; a lost wake-up shows as the runner's timeout. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kRounds = 2000, kAlarms = 3, kBulk = 1 << 20 };

static int ping[2], pong[2];
static atomic_int alarms;

static void* echo(void* arg) {
  (void)arg;
  for (int i = 0; i < kRounds; i++) {
    unsigned char c;
    if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) {
      perror("echo");
      exit(2);
    }
  }
  return NULL;
}

static void* pinger(void* arg) {
  int* bad = arg;
  for (int i = 0; i < kRounds; i++) {
    unsigned char c = (unsigned char)(i * 7), back;
    if (write(ping[1], &c, 1) != 1 || read(pong[0], &back, 1) != 1) {
      perror("pinger");
      exit(2);
    }
    if (back != c) (*bad)++;
  }
  return NULL;
}

static void ping_pong(const char* what) {
  int bad = 0;
  pthread_t a, b;
  pthread_create(&a, NULL, echo, NULL);
  pthread_create(&b, NULL, pinger, &bad);
  pthread_join(b, NULL);
  pthread_join(a, NULL);
  printf("%s: %d round trips, %d wrong\n", what, kRounds, bad);
}

static void on_alarm(int sig) {
  (void)sig;
  atomic_fetch_add(&alarms, 1);
}

static int quiet[2];

/* Reads one byte from quiet[0] with SIGALRM open; the main thread blocks it
 * (so the kernel gives the process-directed signal to this thread). */
static void* reader(void* arg) {
  long* out = arg;
  sigset_t open;
  sigemptyset(&open);
  sigaddset(&open, SIGALRM);
  pthread_sigmask(SIG_UNBLOCK, &open, NULL);
  unsigned char c = 0;
  ssize_t r = read(quiet[0], &c, 1);
  out[0] = r;
  out[1] = r < 0 ? errno : 0;
  out[2] = c;
  return NULL;
}

/* Feeds the reader once the handler has run kAlarms times (or gives up
 * after 3 s). */
static void* feeder(void* arg) {
  (void)arg;
  for (int i = 0; i < 300 && atomic_load(&alarms) < kAlarms; i++) usleep(10 * 1000);
  unsigned char c = 'z';
  if (write(quiet[1], &c, 1) != 1) exit(3);
  return NULL;
}

static void timer_ms(int ms) {
  struct itimerval it = {{0, ms * 1000}, {0, ms * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static void interrupted_read(int restart) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGALRM, &sa, NULL);
  atomic_store(&alarms, 0);
  if (pipe(quiet) != 0) exit(4);
  long got[3] = {0, 0, 0};
  pthread_t r, f;
  pthread_create(&r, NULL, reader, got);
  if (restart) pthread_create(&f, NULL, feeder, NULL);
  timer_ms(20);
  pthread_join(r, NULL);
  timer_ms(0);
  if (!restart) {
    /* The read ended with EINTR: no feeder needed. */
  } else {
    pthread_join(f, NULL);
  }
  close(quiet[0]);
  close(quiet[1]);
  if (restart)
    printf("SA_RESTART read: result %ld errno %s byte %c after %s alarms\n", got[0],
           got[1] ? strerror((int)got[1]) : "-", (int)got[2], atomic_load(&alarms) >= kAlarms ? "the" : "too few");
  else
    printf("no SA_RESTART read: result %ld errno %s, handler ran: %s\n", got[0], got[1] ? strerror((int)got[1]) : "-",
           atomic_load(&alarms) > 0 ? "yes" : "no");
}

static void spin_s(double s) {
  double end = mnp_now() + s;
  while (mnp_now() < end) {
  }
}

static atomic_int usr1_ran, read_done;
static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&usr1_ran, 1);
}
static void* blocked_reader(void* arg) {
  long* out = arg;
  unsigned char c;
  ssize_t r = read(quiet[0], &c, 1);
  out[0] = r;
  out[1] = r < 0 ? errno : 0;
  atomic_store(&read_done, 1);
  return NULL;
}

/* how: 0 sigaction without SA_RESTART, 1 siginterrupt. */
static void handler_changed_during_read(int how) {
  signal(SIGUSR1, on_usr1); /* SA_RESTART */
  atomic_store(&usr1_ran, 0);
  atomic_store(&read_done, 0);
  if (pipe(quiet) != 0) exit(4);
  long got[2] = {0, 0};
  pthread_t r;
  pthread_create(&r, NULL, blocked_reader, got);
  spin_s(0.2);
  if (how == 1) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    siginterrupt(SIGUSR1, 1); /* what programs still call */
#pragma GCC diagnostic pop
  } else {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
  }
  pthread_kill(r, SIGUSR1);
  for (int i = 0; i < 100 && !atomic_load(&read_done); i++) spin_s(0.02);
  int stuck = !atomic_load(&read_done);
  if (stuck && write(quiet[1], "x", 1) != 1) exit(5);
  pthread_join(r, NULL);
  close(quiet[0]);
  close(quiet[1]);
  printf("handler changed during read (%s): %s, result %ld errno %s, handler ran %d\n",
         how ? "siginterrupt" : "sigaction", stuck ? "still blocked after 2 s" : "ended", got[0],
         got[1] ? strerror((int)got[1]) : "-", atomic_load(&usr1_ran));
  signal(SIGUSR1, SIG_DFL);
}

static int bulk[2];

static void* drainer(void* arg) {
  long* total = arg;
  char buf[4096];
  ssize_t r;
  while ((r = read(bulk[0], buf, sizeof buf)) > 0) *total += r;
  return NULL;
}

int main(void) {
  mnp_report_shim();
  /* SIGALRM blocked here and in every thread made from here but the
   * reader, which opens it. */
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, NULL);

  if (pipe(ping) != 0 || pipe(pong) != 0) return 1;
  ping_pong("pipes");
  close(ping[0]), close(ping[1]), close(pong[0]), close(pong[1]);
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, ping) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pong) != 0) return 1;
  ping_pong("socketpairs");
  close(ping[0]), close(ping[1]), close(pong[0]), close(pong[1]);

  interrupted_read(1);
  interrupted_read(0);

  /* Back to a handler with SA_RESTART: reads and writes may be made for
   * real again. */
  signal(SIGALRM, on_alarm);
  handler_changed_during_read(0);
  handler_changed_during_read(1);
  if (pipe(bulk) != 0) return 1;
  long total = 0;
  pthread_t d;
  pthread_create(&d, NULL, drainer, &total);
  static char block[kBulk];
  memset(block, 'b', sizeof block);
  ssize_t w = write(bulk[1], block, sizeof block);
  close(bulk[1]);
  pthread_join(d, NULL);
  printf("bulk write: %zd written, %ld read\n", w, total);
  return 0;
}
