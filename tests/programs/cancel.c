/* cancel — pthread_cancel of threads blocked in every kind of wait.
 *
 * Each case starts one thread (or a hundred), lets it block, cancels it and
 * joins it with a 5 s limit, then prints one line: whether the join saw
 * PTHREAD_CANCELED and how many cleanup handlers ran. Natively every case
 * is canceled. Under the shim each kind of wait is a different path:
 *
 *   cond_wait, cond_timedwait   runtime wait (sema table); the cleanup
 *                               handler must find the mutex re-taken
 *                               (unlock of an error-checking mutex == 0)
 *   sem_wait, sem_timedwait     runtime wait (sema table)
 *   join                        join word; the canceled joiner must leave
 *                               its target joinable (joined afterwards)
 *   sleep, nanosleep,
 *   clock_nanosleep             timer wait (netpoll_sleep)
 *   read, recv, accept          netpoller fd wait
 *   poll, select, epoll_wait    netpoller multi-fd wait
 *   fgets, pause, sigwait,      hand-off: glibc's own call on the M's
 *   waitpid                     kernel thread, unwound by SIGCANCEL
 *   async                       PTHREAD_CANCEL_ASYNCHRONOUS compute loop
 *   disable                     request made while PTHREAD_CANCEL_DISABLE:
 *                               not acted on in a sleep, nor when enabled
 *                               again, but at the next cancellation point
 *                               (a condvar wait, at entry, mutex held)
 *   exited                      a finished, unjoined thread: 0, and the
 *                               join still returns its own value
 *   many                        100 threads in one condvar, canceled at once
 *
 * Fails (stdout differs, or a join times out) when a wait is not ended by
 * the request, a cleanup handler is skipped or runs without the mutex, or
 * pthread_cancel fails. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static pthread_mutex_t mu;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static int pfd[2], sv[2], lfd, epfd;
static FILE* pin; /* stdio on the pipe's read end */
static pid_t child;
static pthread_t join_target;
static atomic_int cleanups;
static atomic_int unlock_ok;
static atomic_int started;
static char disable_log[128];

static void count_cleanup(void* a) {
  (void)a;
  atomic_fetch_add(&cleanups, 1);
}
static void unlock_cleanup(void* a) {
  if (pthread_mutex_unlock(a) == 0) atomic_fetch_add(&unlock_ok, 1);
  atomic_fetch_add(&cleanups, 1);
}
static void far_future(struct timespec* ts) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += 60;
}

enum {
  kCondWait,
  kCondTimed,
  kSemWait,
  kSemTimed,
  kJoin,
  kSleep,
  kNanosleep,
  kClockNanosleep,
  kRead,
  kRecv,
  kAccept,
  kPoll,
  kSelect,
  kEpoll,
  kFgets,
  kPause,
  kSigwait,
  kWaitpid,
  kAsync,
  kCases
};
static const char* const kNames[kCases] = {"cond_wait", "cond_timedwait", "sem_wait",        "sem_timedwait", "join",
                                           "sleep",     "nanosleep",      "clock_nanosleep", "read",          "recv",
                                           "accept",    "poll",           "select",          "epoll_wait",    "fgets",
                                           "pause",     "sigwait",        "waitpid",         "async"};

static void* blocker(void* arg) {
  int k = (int)(intptr_t)arg;
  char c;
  struct timespec ts = {60, 0};
  struct pollfd p = {pfd[0], POLLIN, 0};
  fd_set rs;
  struct epoll_event ev;
  sigset_t set;
  int sig, st;
  char line[16];
  pthread_cleanup_push(count_cleanup, NULL);
  atomic_fetch_add(&started, 1);
  switch (k) {
    case kCondWait:
    case kCondTimed:
      pthread_mutex_lock(&mu);
      pthread_cleanup_push(unlock_cleanup, &mu);
      for (;;) {
        if (k == kCondWait) pthread_cond_wait(&cv, &mu);
        else {
          far_future(&ts);
          pthread_cond_timedwait(&cv, &mu, &ts);
        }
      }
      pthread_cleanup_pop(0);
      break;
    case kSemWait:
      sem_wait(&sem);
      break;
    case kSemTimed:
      far_future(&ts);
      sem_timedwait(&sem, &ts);
      break;
    case kJoin:
      pthread_join(join_target, NULL);
      break;
    case kSleep:
      sleep(60);
      break;
    case kNanosleep:
      nanosleep(&ts, NULL);
      break;
    case kClockNanosleep:
      clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
      break;
    case kRead:
      read(pfd[0], &c, 1);
      break;
    case kRecv:
      recv(sv[0], &c, 1, 0);
      break;
    case kAccept:
      accept(lfd, NULL, NULL);
      break;
    case kPoll:
      poll(&p, 1, -1);
      break;
    case kSelect:
      FD_ZERO(&rs);
      FD_SET(pfd[0], &rs);
      select(pfd[0] + 1, &rs, NULL, NULL, NULL);
      break;
    case kEpoll:
      epoll_wait(epfd, &ev, 1, -1);
      break;
    case kFgets:
      fgets(line, sizeof line, pin);
      break;
    case kPause:
      pause();
      break;
    case kSigwait:
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      sigwait(&set, &sig);
      break;
    case kWaitpid:
      waitpid(child, &st, 0);
      break;
    case kAsync:
      pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
      for (volatile unsigned long i = 0;; i++) {
      }
  }
  pthread_cleanup_pop(0);
  return (void*)1;
}

static void* forever(void* arg) {
  (void)arg;
  pthread_cleanup_push(count_cleanup, NULL);
  atomic_fetch_add(&started, 1);
  pause();
  pthread_cleanup_pop(0);
  return NULL;
}

/* Joins with a 5 s limit; prints the outcome. */
static void finish(const char* name, pthread_t t, int cancel_rc, int before, int unlock_before) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  void* r = NULL;
  int jr = pthread_timedjoin_np(t, &r, &dl);
  printf("%-16s cancel=%d join=%s canceled=%d cleanup=%d", name, cancel_rc, jr ? strerror(jr) : "ok",
         r == PTHREAD_CANCELED, atomic_load(&cleanups) - before);
  if (atomic_load(&unlock_ok) != unlock_before) printf(" mutex-held=%d", atomic_load(&unlock_ok) - unlock_before);
  printf("\n");
  fflush(stdout);
}

static void settle(int want) {
  while (atomic_load(&started) < want) usleep(1000);
  usleep(50000); /* long enough for each thread to block */
}

static void one_case(int k) {
  if (k == kWaitpid) {
    child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
  }
  int before = atomic_load(&cleanups), ub = atomic_load(&unlock_ok);
  int s0 = atomic_load(&started); /* before join_target may count itself */
  if (k == kJoin) pthread_create(&join_target, NULL, forever, NULL);
  pthread_t t;
  pthread_create(&t, NULL, blocker, (void*)(intptr_t)k);
  settle(s0 + (k == kJoin ? 2 : 1));
  int rc = pthread_cancel(t);
  finish(kNames[k], t, rc, before, ub);
  if (k == kJoin) { /* the canceled joiner left its target joinable */
    before = atomic_load(&cleanups);
    rc = pthread_cancel(join_target);
    finish("join-target", join_target, rc, before, ub);
  }
  if (k == kWaitpid) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
}

static void dlog(const char* s) {
  strcat(disable_log, s);
  strcat(disable_log, " ");
}

static void* disabled(void* arg) {
  (void)arg;
  struct timespec ts = {0, 200 * 1000 * 1000};
  pthread_cleanup_push(count_cleanup, NULL);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  atomic_fetch_add(&started, 1);
  nanosleep(&ts, NULL); /* canceled meanwhile: not acted on, the sleep runs out */
  dlog("slept");
  pthread_testcancel();
  dlog("tested");
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
  dlog("enabled");
  pthread_mutex_lock(&mu);
  pthread_cleanup_push(unlock_cleanup, &mu);
  pthread_cond_wait(&cv, &mu); /* a cancellation point: acted on at entry */
  dlog("not-reached");
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* finished(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  return (void*)42;
}

enum { kMany = 100 };

int main(void) {
  mnp_report_shim();
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&mu, &ma);
  sem_init(&sem, 0, 0);
  if (pipe(pfd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 2;
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) || listen(lfd, 4)) return 2;
  pin = fdopen(dup(pfd[0]), "r");
  epfd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(epfd, EPOLL_CTL_ADD, pfd[0], &ev);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  for (int k = 0; k < kCases; k++) one_case(k);

  /* disable: canceled while PTHREAD_CANCEL_DISABLE */
  int before = atomic_load(&cleanups), ub = atomic_load(&unlock_ok), s0 = atomic_load(&started);
  pthread_t t;
  pthread_create(&t, NULL, disabled, NULL);
  while (atomic_load(&started) == s0) usleep(1000);
  int rc = pthread_cancel(t);
  finish("disable", t, rc, before, ub);
  printf("disable-log      %s\n", disable_log);

  /* exited: finished, not joined */
  s0 = atomic_load(&started);
  pthread_create(&t, NULL, finished, NULL);
  while (atomic_load(&started) == s0) usleep(1000);
  usleep(50000);
  rc = pthread_cancel(t);
  void* r = NULL;
  int jr = pthread_join(t, &r);
  printf("%-16s cancel=%d join=%d value=%ld\n", "exited", rc, jr, (long)(intptr_t)r);

  /* many: 100 threads in one condvar, canceled at once */
  static pthread_t ts[kMany];
  before = atomic_load(&cleanups);
  ub = atomic_load(&unlock_ok);
  s0 = atomic_load(&started);
  for (int i = 0; i < kMany; i++) pthread_create(&ts[i], NULL, blocker, (void*)(intptr_t)kCondWait);
  settle(s0 + kMany);
  int bad = 0;
  for (int i = 0; i < kMany; i++) bad += pthread_cancel(ts[i]) != 0;
  int canceled = 0, joined = 0;
  for (int i = 0; i < kMany; i++) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    r = NULL;
    joined += pthread_timedjoin_np(ts[i], &r, &dl) == 0;
    canceled += r == PTHREAD_CANCELED;
  }
  printf("%-16s cancel-failed=%d joined=%d canceled=%d cleanup=%d mutex-held=%d trylock=%d\n", "many", bad, joined,
         canceled, atomic_load(&cleanups) - before, atomic_load(&unlock_ok) - ub, pthread_mutex_trylock(&mu));
  return 0;
}
