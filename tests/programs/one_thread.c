/* one_thread — what a process that has not made a thread yet holds.
 *
 * Most processes in a tree run under the shim (a shell script, make's
 * children) never make a second thread, and under the shim they must not pay
 * for one (docs/ARCHITECTURE.md, "Start-up"): no thread stack slab (64 MiB
 * of address space and a guard install per slot), no malloc arena besides
 * the main one (glibc makes one for each new thread's first malloc, and the
 * shim's probe for glibc's malloc-cache slots is such a thread) and no
 * second kernel thread. This program counts, before its first
 * pthread_create and after one thread has been made and joined:
 *
 *   arenas      <heap> elements in malloc_info's report (one per arena)
 *   big_anon    anonymous mappings of 32 MiB or more (a slab, or an
 *               arena's reserved heap) in /proc/self/maps
 *   threads     Threads: in /proc/self/status
 *
 * Then it does what a process that must stay single-threaded (Chromium's
 * zygote checks it before every fork) does with one thread: it sets
 * PR_SET_NO_NEW_PRIVS and its name, raises its nice value by one, sleeps,
 * and makes a timed wait for a mutex it holds itself (ETIMEDOUT). The shim
 * once answered the prctl and the setpriority by starting sysmon (to keep
 * the state off it) and each wait by parking (which starts sysmon and an
 * M): three kernel threads. The count after them goes to stdout ("after the
 * waits"); the thread made later reports its nice value, inherited from
 * main natively.
 *
 * Then, still with one thread, it forks: the child (whose runtime, under the
 * shim, starts from the state start-up left, docs/ARCHITECTURE.md "Fork")
 * makes 4 threads that wait on a condition variable and sleep, and exits 0
 * if all went as it should.
 *
 * stdout: the "before" line (identical natively and under the shim), the
 * fork child's verdict, then "thread: ok" once the parent's thread ran and
 * its malloc'ed string came back.
 * The "after" counts go to stderr as MNP-CHECK lines: the thread's first
 * malloc makes a second arena natively, and under the shim the probe does. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static int count_arenas(void) {
  char* buf = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  if (!f) return -1;
  malloc_info(0, f);
  fclose(f);
  int n = 0;
  for (const char* p = buf; (p = strstr(p, "<heap nr=")) != NULL; p++) n++;
  free(buf);
  return n;
}

static int count_big_anon(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off;
    char perms[8], dev[16];
    unsigned long inode;
    int name_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev, &inode, &name_at) < 6) continue;
    const char* name = line + name_at;
    int anon = inode == 0 && (name[0] == '\n' || name[0] == '\0');
    if (anon && hi - lo >= (32ul << 20)) n++;
  }
  fclose(f);
  return n;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, arrived;

static void* child_worker(void* arg) {
  pthread_mutex_lock(&mu);
  arrived++;
  pthread_cond_broadcast(&cv);
  while (!go) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  struct timespec ts = {0, 2 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return (void*)((long)arg * 3);
}

/* The fork child's part: 0 when its 4 threads all ran and returned. */
static int child_threads(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++)
    if (pthread_create(&t[i], NULL, child_worker, (void*)i) != 0) return 1;
  pthread_mutex_lock(&mu);
  while (arrived < 4) pthread_cond_wait(&cv, &mu);
  go = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  for (long i = 0; i < 4; i++) {
    void* r;
    if (pthread_join(t[i], &r) != 0 || (long)r != i * 3) return 2;
  }
  return 0;
}

static int worker_nice;

static void* worker(void* arg) {
  (void)arg;
  worker_nice = getpriority(PRIO_PROCESS, 0);
  return strdup("from the thread");
}

int main(void) {
  mnp_report_shim();
  int arenas = count_arenas(), big = count_big_anon(), threads = (int)mnp_kernel_threads();
  printf("before the first thread: arenas=%d big_anon=%d threads=%d\n", arenas, big, threads);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_NAME, "one-thread");
  int nice0 = getpriority(PRIO_PROCESS, 0);
  setpriority(PRIO_PROCESS, 0, nice0 + 1);
  usleep(1000);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 1000 * 1000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&mu);
  int mw = pthread_mutex_timedlock(&mu, &until);
  pthread_mutex_unlock(&mu);
  printf("after the waits: timedlock %s, threads=%d\n", strerror(mw), (int)mnp_kernel_threads());
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(child_threads());
  int st = -1;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) st = -1;
  printf("fork child with 4 threads: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "not ok");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "FAIL: fork child status %#x\n", st);
  pthread_t t;
  void* res = NULL;
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &res) != 0) {
    fprintf(stderr, "FAIL: pthread_create/join\n");
    return 1;
  }
  int ok = res && !strcmp(res, "from the thread");
  free(res);
  printf("thread: %s, nice %+d from main's first\n", ok ? "ok" : "not ok", worker_nice - nice0);
  mnp_check("arenas_after", count_arenas());
  mnp_check("big_anon_after", count_big_anon());
  return ok ? 0 : 1;
}
