/* stdio_threads — many threads writing to one FILE at the same time.
 *
 * 16 threads each write 1000 lines to a shared tmpfile() with fprintf,
 * fputs and fputc (each call locks the FILE internally), yielding every few
 * lines; lines are long enough that the 4 KiB buffer is flushed (a write
 * syscall) while some thread holds the lock.  Main reads the file back:
 * every line must be intact, its payload right, and each thread's lines in
 * order.  Under the shim the FILE lock is contended by threads that share a
 * kernel thread.
 *
 * Fails when a line is torn or lost, a thread's lines are out of order, or
 * the program hangs on the FILE lock (runner timeout).  MNP-CHECK
 * kthreads_max is sampled while all writers are alive. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mnp_check.h"

enum { kThreads = 16, kLines = 1000, kMaxPayload = 120 };

static FILE* g_file;
static atomic_int g_arrived;
static atomic_llong g_kthreads_max;

static int payload_len(int id, int line) { return (id * 7 + line * 13) % kMaxPayload; }

static void* writer(void* arg) {
  int id = (int)(intptr_t)arg;
  char payload[kMaxPayload + 1];
  /* Gate: all writers alive and contending from the first line. */
  atomic_fetch_add(&g_arrived, 1);
  while (atomic_load(&g_arrived) < kThreads) sched_yield();
  long long k = mnp_kernel_threads();
  long long cur = atomic_load(&g_kthreads_max);
  while (k > cur && !atomic_compare_exchange_weak(&g_kthreads_max, &cur, k)) {
  }
  for (int line = 0; line < kLines; line++) {
    int n = payload_len(id, line);
    memset(payload, 'a' + id, (size_t)n);
    payload[n] = '\0';
    switch (line % 3) {
      case 0:
        fprintf(g_file, "thread %02d line %04d %s\n", id, line, payload);
        break;
      case 1: {
        char head[32];
        snprintf(head, sizeof head, "thread %02d line %04d ", id, line);
        flockfile(g_file); /* keep the pieces of this line together */
        fputs(head, g_file);
        fputs(payload, g_file);
        fputc('\n', g_file);
        funlockfile(g_file);
        break;
      }
      case 2: {
        char buf[64 + kMaxPayload];
        int len = snprintf(buf, sizeof buf, "thread %02d line %04d %s\n", id, line, payload);
        fwrite(buf, 1, (size_t)len, g_file);
        break;
      }
    }
    if (line % 5 == 0) sched_yield();
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  g_file = tmpfile();
  if (g_file == NULL) return 1;
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, writer, (void*)(intptr_t)i) != 0) return 1;
  for (int i = 0; i < kThreads; i++)
    if (pthread_join(t[i], NULL) != 0) return 1;

  if (fflush(g_file) != 0) return 1;
  rewind(g_file);
  int next[kThreads] = {0};
  long lines = 0, bad = 0;
  char buf[256];
  while (fgets(buf, sizeof buf, g_file) != NULL) {
    lines++;
    int id = -1, line = -1, used = 0;
    /* "thread II line LLLL " is 20 characters, then the payload and '\n' */
    if (sscanf(buf, "thread %2d line %4d%n", &id, &line, &used) != 2 || used != 19 || buf[19] != ' ' || id < 0 ||
        id >= kThreads || line != next[id]) {
      bad++;
      continue;
    }
    int n = payload_len(id, line);
    const char* p = buf + 20;
    int ok = (int)strlen(p) == n + 1 && p[n] == '\n';
    for (int k = 0; ok && k < n; k++) ok = p[k] == 'a' + id;
    if (!ok) {
      bad++;
      continue;
    }
    next[id]++;
  }
  for (int i = 0; i < kThreads; i++)
    if (next[i] != kLines) bad++;
  mnp_check("kthreads_max", atomic_load(&g_kthreads_max));
  printf("stdio_threads: lines=%ld expected=%d bad=%ld\n", lines, kThreads * kLines, bad);
  return lines == kThreads * kLines && bad == 0 ? 0 : 1;
}
