/* proc_task_stat — each thread's /proc/self/task/<gettid()>/stat, read the
 * way netdata reads it (open once, then lseek to 0 and read each sample).
 *
 * Four threads name themselves, report their ids and burn about 200 ms of
 * CPU each; main opens each one's stat file, checks the line (id, name,
 * state, 52 fields), reads it again after the work and checks that the
 * thread's user time grew by at least 10 ticks; a joined thread's file no
 * longer opens (ENOENT); a file that later gets the number of a stat fd
 * that fclose closed keeps its own data. Under the runtime a G's id named no kernel task
 * and every open failed: netdata's log filled with "Cannot open file" and
 * its per-thread CPU charts were missing. stdout: fixed lines. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 4 };

static atomic_int ids[kThreads], go, burnt;
static volatile unsigned long sink;

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void* worker(void* arg) {
  long i = (long)arg;
  char name[16];
  snprintf(name, sizeof name, "statw%ld", i);
  pthread_setname_np(pthread_self(), name);
  atomic_store(&ids[i], gettid());
  while (!atomic_load(&go)) usleep(1000);
  double start = cpu_s();
  unsigned long x = (unsigned long)i + 1;
  while (cpu_s() - start < 0.2)
    for (int k = 0; k < 10000; k++) x = x * 6364136223846793005UL + 1442695040888963407UL;
  sink = x;
  atomic_fetch_add(&burnt, 1);
  while (atomic_load(&go) != 2) usleep(1000);
  return NULL;
}

// Reads fd from its start; returns field 14 (utime) or -1 if the line is
// not the stat line of thread id named name.
static long read_utime(int fd, int id, const char* name) {
  char buf[2048];
  if (lseek(fd, 0, SEEK_SET) != 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char head[64];
  snprintf(head, sizeof head, "%d (%s) ", id, name);
  if (strncmp(buf, head, strlen(head)) != 0) {
    fprintf(stderr, "unexpected line: %s", buf);
    return -1;
  }
  const char* p = buf + strlen(head);
  if (!strchr("RSDZ", *p)) return -1;
  int fields = 2;
  long utime = -1;
  for (char* tok = strtok(buf + strlen(head), " \n"); tok; tok = strtok(NULL, " \n"))
    if (++fields == 14) utime = atol(tok);
  if (fields < 52) {
    fprintf(stderr, "%d fields\n", fields);
    return -1;
  }
  return utime;
}

int main(void) {
  mnp_report_shim();
  pthread_t t[kThreads];
  for (long i = 0; i < kThreads; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  int fds[kThreads];
  long before[kThreads];
  int opened = 0, good = 0, grew = 0;
  for (int i = 0; i < kThreads; i++) {
    while (!atomic_load(&ids[i])) usleep(1000);
    char path[64], name[16];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", atomic_load(&ids[i]));
    snprintf(name, sizeof name, "statw%d", i);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      fprintf(stderr, "open %s: %s\n", path, strerror(errno));
      continue;
    }
    opened++;
    if ((before[i] = read_utime(fds[i], ids[i], name)) >= 0) good++;
  }
  atomic_store(&go, 1);
  while (atomic_load(&burnt) != kThreads) usleep(1000);
  for (int i = 0; i < kThreads; i++) {
    if (fds[i] < 0) continue;
    char name[16];
    snprintf(name, sizeof name, "statw%d", i);
    long after = read_utime(fds[i], ids[i], name);
    if (after >= 0 && before[i] >= 0 && after - before[i] >= 10) grew++;
    else fprintf(stderr, "thread %d: utime %ld -> %ld\n", i, before[i], after);
    close(fds[i]);
  }
  // A stat fd closed by fclose (glibc's own close): the next file with
  // that number is the program's, and an lseek to 0 must not rewrite it.
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", atomic_load(&ids[1]));
  int sfd = open(path, O_RDONLY);
  FILE* f = sfd >= 0 ? fdopen(sfd, "r") : NULL;
  if (f) fclose(f);
  char tmpl[] = "/tmp/mnp-proc-task-XXXXXX";
  int dfd = mkstemp(tmpl);
  char back[32] = {0};
  if (dfd >= 0) {
    unlink(tmpl);
    if (write(dfd, "program data\n", 13) != 13 || lseek(dfd, 0, SEEK_SET) != 0 || read(dfd, back, sizeof back - 1) < 0)
      back[0] = '\0';
    close(dfd);
  }
  printf("a reused fd keeps its data: %s\n", strcmp(back, "program data\n") == 0 ? "yes" : "no");
  atomic_store(&go, 2);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", atomic_load(&ids[0]));
  int gone = open(path, O_RDONLY);
  printf("opened %d of %d, lines %d, user time grew %d\n", opened, kThreads, good, grew);
  printf("after join: %s\n", gone < 0 && errno == ENOENT ? "ENOENT" : "still there");
  return 0;
}
