/* mnp_check.h — helpers shared by the integration programs (C and C++).
 *
 * The programs are ordinary pthread programs; they never link the shim.  They
 * report diagnostic facts to the runner on stderr as `MNP-CHECK key=value`
 * lines (integer values), and results on stdout.  Everything here reads /proc
 * with open/read into a stack buffer (no malloc, no stdio lock), so it can be
 * called from any thread at any time. */
#ifndef MNP_TESTS_PROGRAMS_MNP_CHECK_H
#define MNP_TESTS_PROGRAMS_MNP_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Runs this program again with lib added after whatever LD_PRELOAD holds
 * (the shim, under the runner), as a user writes `LD_PRELOAD=...:lib`;
 * marker is set in the new run's environment so that it does not do it
 * again. Returns only if the exec failed. */
static inline void mnp_reexec_preloading(const char* lib, const char* marker, char** argv) {
  const char* pre = getenv("LD_PRELOAD");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s%s%s", pre && *pre ? pre : "", pre && *pre ? ":" : "", lib);
  setenv("LD_PRELOAD", buf, 1);
  setenv(marker, "1", 1);
  execv("/proc/self/exe", argv);
  perror("execv");
}

/* 1 when libmnpthread.so is loaded into this process (it exports mnp_version). */
static inline int mnp_shim_loaded(void) { return dlsym(RTLD_DEFAULT, "mnp_version") != NULL; }

static inline void mnp_check(const char* key, long long value) { fprintf(stderr, "MNP-CHECK %s=%lld\n", key, value); }

/* Monotonic time in seconds. */
static inline double mnp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Monotonic time in milliseconds. */
static inline double mnp_now_ms(void) { return mnp_now() * 1e3; }

/* Sleeps n times for us microseconds; returns the longest time between two
 * wake-ups, in ms (a ticker's view of how long others kept it from a CPU). */
static inline double mnp_worst_tick_gap_ms(int n, unsigned us) {
  double last = mnp_now_ms(), worst = 0;
  for (int i = 0; i < n; i++) {
    usleep(us);
    double t = mnp_now_ms();
    if (t - last > worst) worst = t - last;
    last = t;
  }
  return worst;
}

/* A scenario's result: "name: ok" or "name: not ok" on stdout (compared with
 * the native run's), the details on stderr when it failed. */
static inline void mnp_report_case(const char* name, int ok, const char* detail) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  fflush(stdout);
  if (!ok) fprintf(stderr, "FAIL %s: %s\n", name, detail);
}

/* Sleeps ms milliseconds in nanosleep through the bare syscall instruction
 * (x86-64): no wrapper of the shim's sees it, so under the shim the thread's
 * P stays held by a kernel thread asleep in the kernel. */
static inline void mnp_bare_sleep_ms(int ms) {
  double end = mnp_now() + ms / 1e3;
  for (double left; (left = end - mnp_now()) > 0;) {
    struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(35L), "D"(&ts), "S"(0L) : "rcx", "r11", "memory");
    (void)ret;
  }
}

/* Every program calls this once, from main. */
static inline void mnp_report_shim(void) { mnp_check("shim", mnp_shim_loaded()); }

/* Reads the whole of a small /proc file into buf (NUL-terminated).
 * Returns the length, or -1. */
static inline long mnp_read_small_file(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      close(fd);
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return (long)len;
}

/* Calls fn(text, ctx) with the /proc/self/task/<id>/status text of every
 * task of this process (tasks that end meanwhile are skipped); returns the
 * number of tasks read, or -1. */
static inline int mnp_for_each_task_status(void (*fn)(const char* status, void* ctx), void* ctx) {
  DIR* d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  int tasks = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320], buf[8192];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if (mnp_read_small_file(path, buf, sizeof buf) < 0) continue; /* task gone */
    tasks++;
    fn(buf, ctx);
  }
  closedir(d);
  return tasks;
}

/* Value of an integer field ("Threads:", "VmRSS:", ...) of a status file in
 * /proc, or -1 when absent.  field includes the colon. */
static inline long long mnp_status_field_of(const char* path, const char* field) {
  char buf[8192];
  if (mnp_read_small_file(path, buf, sizeof buf) < 0) return -1;
  size_t flen = strlen(field);
  for (const char* line = buf; *line != '\0';) {
    if (strncmp(line, field, flen) == 0) return strtoll(line + flen, NULL, 10);
    const char* nl = strchr(line, '\n');
    if (nl == NULL) break;
    line = nl + 1;
  }
  return -1;
}

/* Number of kernel threads of this process right now. */
static inline long long mnp_kernel_threads(void) { return mnp_status_field_of("/proc/self/status", "Threads:"); }

/* Resident set size of this process in KiB. */
static inline long long mnp_rss_kib(void) { return mnp_status_field_of("/proc/self/status", "VmRSS:"); }

#endif /* MNP_TESTS_PROGRAMS_MNP_CHECK_H */
