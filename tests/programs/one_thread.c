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
 *   threads     entries in /proc/self/task
 *
 * stdout: the "before" line (identical natively and under the shim), then
 * "thread: ok" once the thread ran and its malloc'ed string came back.
 * The "after" counts go to stderr as MNP-CHECK lines: the thread's first
 * malloc makes a second arena natively, and under the shim the probe does. */
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int count_threads(void) {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  for (struct dirent* e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void* worker(void* arg) {
  (void)arg;
  return strdup("from the thread");
}

int main(void) {
  mnp_report_shim();
  int arenas = count_arenas(), big = count_big_anon(), threads = count_threads();
  printf("before the first thread: arenas=%d big_anon=%d threads=%d\n", arenas, big, threads);
  pthread_t t;
  void* res = NULL;
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &res) != 0) {
    fprintf(stderr, "FAIL: pthread_create/join\n");
    return 1;
  }
  int ok = res && !strcmp(res, "from the thread");
  free(res);
  printf("thread: %s\n", ok ? "ok" : "not ok");
  mnp_check("arenas_after", count_arenas());
  mnp_check("big_anon_after", count_big_anon());
  return ok ? 0 : 1;
}
