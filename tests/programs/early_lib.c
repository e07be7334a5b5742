/* early_lib — a shared library whose constructor uses threads and blocking
 * calls before main.  The loader runs the constructors of a program's
 * libraries before those of a preloaded library, so under the shim every
 * call below reaches an interposer before the shim's own constructor has
 * run (as libnuma, OpenBLAS, jemalloc, libcap-ng and libGLdispatch do in
 * Debian's programs).  Each result is kept for early_start's main to print. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

char early_log[2048];
static size_t early_len;

static void note(const char* what, long v) {
  int n = snprintf(early_log + early_len, sizeof early_log - early_len, "%s %ld\n", what, v);
  if (n > 0 && early_len + (size_t)n < sizeof early_log) early_len += (size_t)n;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;
static sem_t sem;
static int fut;

static void* worker(void* arg) {
  pthread_mutex_lock(&mu);
  ready = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  sem_post(&sem);
  __atomic_store_n(&fut, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &fut, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  return (char*)arg + 1;
}

__attribute__((constructor)) static void early(void) {
  note("sem_init", sem_init(&sem, 0, 0));
  pthread_t t;
  note("pthread_create", pthread_create(&t, NULL, worker, (void*)41));
  pthread_mutex_lock(&mu);
  while (!ready) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  note("sem_wait", sem_wait(&sem));
  while (!__atomic_load_n(&fut, __ATOMIC_SEQ_CST)) {
    long r = syscall(SYS_futex, &fut, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    if (r != 0 && errno != EAGAIN && errno != EINTR) break;
  }
  note("futex", fut);
  void* v = NULL;
  note("pthread_join", pthread_join(t, &v));
  note("join value", (long)v);

  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  char buf[64];
  note("open+read", fd >= 0 && read(fd, buf, sizeof buf) > 0);
  note("close", close(fd));
  FILE* f = fmemopen((void*)"one\ntwo\n", 8, "r");
  char* line = NULL;
  size_t cap = 0;
  note("getline", f ? (long)getline(&line, &cap, f) : -1);
  free(line);
  if (f) fclose(f);

  int p[2];
  note("pipe", pipe(p));
  note("write", write(p[1], "x", 1));
  struct pollfd pfd = {p[0], POLLIN, 0};
  note("poll", poll(&pfd, 1, 1000));
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  struct timeval tv = {1, 0};
  note("select", select(p[0] + 1, &rs, NULL, NULL, &tv));
  note("read", read(p[0], buf, 1));
  close(p[0]);
  close(p[1]);

  struct timespec ts = {0, 1000000};
  note("nanosleep", nanosleep(&ts, NULL));
  note("usleep", usleep(1000));
  struct sigaction sa;
  note("sigaction", sigaction(SIGUSR2, NULL, &sa));
  sigset_t old;
  note("pthread_sigmask", pthread_sigmask(SIG_BLOCK, NULL, &old));
  void* h = dlopen("libm.so.6", RTLD_NOW);
  note("dlopen", h != NULL);
  if (h) dlclose(h);
  note("sched_yield", sched_yield());
}
