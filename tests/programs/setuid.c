/* setuid — credential changes from a non-main thread reach every kernel
 * thread: setgroups, initgroups, setgid and setuid.
 *
 * glibc implements set*id by signalling every thread it knows (SIGSETXID) so
 * that each kernel thread makes the syscall; under the shim the signal lands
 * on kernel threads running Gs with foreign TCBs, and the threads of Ms are
 * on no glibc list (the runtime signals them itself). initgroups calls
 * glibc's setgroups internally. With other threads alive (one blocked in
 * pthread_join, one sleeping, two spinning on sched_yield, one blocked in
 * read on a pipe), a non-main thread calls setgroups({kG1, kG2}), then
 * initgroups(a user no group lists, kG3), then setgid(12345) and
 * setuid(12345). After each step every /proc/self/task/ * /status must show
 * the new supplementary groups, and at the end 12345 in all four Uid: and
 * Gid: fields; every thread, once released, must see the new ids through
 * getuid/getgid/geteuid/getegid.
 *
 * Fails when a kernel thread keeps the old credentials ("all tasks changed:
 * no"), a call fails, or the process hangs in the setxid broadcast (runner
 * timeout).  When not run as root it prints a skip line (same output natively
 * and under the shim). */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kId = 12345, kG1 = 23401, kG2 = 23402, kG3 = 23403, kHelpers = 5 };

static atomic_int g_ready;
static atomic_int g_release;
static int g_pipe[2];
static pthread_t g_sleeper;
static int g_seen_ok[kHelpers];

static int sees_new_ids(void) { return getuid() == kId && geteuid() == kId && getgid() == kId && getegid() == kId; }

static void* joiner(void* arg) {
  int slot = (int)(intptr_t)arg;
  atomic_fetch_add(&g_ready, 1);
  pthread_join(g_sleeper, NULL);
  g_seen_ok[slot] = sees_new_ids();
  return NULL;
}

static void* sleeper(void* arg) {
  int slot = (int)(intptr_t)arg;
  atomic_fetch_add(&g_ready, 1);
  while (!atomic_load(&g_release)) usleep(1000);
  g_seen_ok[slot] = sees_new_ids();
  return NULL;
}

static void* spinner(void* arg) {
  int slot = (int)(intptr_t)arg;
  atomic_fetch_add(&g_ready, 1);
  while (!atomic_load(&g_release)) sched_yield();
  g_seen_ok[slot] = sees_new_ids();
  return NULL;
}

static void* reader(void* arg) {
  int slot = (int)(intptr_t)arg;
  char c;
  atomic_fetch_add(&g_ready, 1);
  if (read(g_pipe[0], &c, 1) != 1) return NULL;
  g_seen_ok[slot] = sees_new_ids();
  return NULL;
}

struct TaskCheck {
  char want_groups[128];
  int ids;
  int mismatches;
};

static void check_task(const char* status, void* ctx) {
  struct TaskCheck* c = ctx;
  int good = 0;
  for (const char* key = "Uid:"; key != NULL; key = strcmp(key, "Uid:") == 0 ? "Gid:" : NULL) {
    const char* line = strstr(status, key);
    long v[4];
    if (line != NULL && sscanf(line + 4, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) == 4 && v[0] == kId &&
        v[1] == kId && v[2] == kId && v[3] == kId)
      good++;
  }
  const char* g = strstr(status, "Groups:");
  if ((c->ids && good != 2) || g == NULL || strncmp(g, c->want_groups, strlen(c->want_groups)) != 0) c->mismatches++;
}

/* Counts the tasks whose "Groups:" line is not `groups` and, with ids, whose
 * "Uid:" and "Gid:" lines are not all kId; returns the number of tasks seen. */
static int scan_tasks(const char* groups, int ids, int* mismatches) {
  struct TaskCheck c = {{0}, ids, 0};
  snprintf(c.want_groups, sizeof c.want_groups, "Groups:\t%s \n", groups);
  int tasks = mnp_for_each_task_status(check_task, &c);
  *mismatches = c.mismatches;
  return tasks;
}

static int g_rc_setgroups = -1, g_rc_initgroups = -1, g_rc_back = 0, g_errno_back = 0;
static int g_mismatch_setgroups = -1, g_mismatch_initgroups = -1;
static int g_rc_setgid = -1, g_rc_setuid = -1, g_tasks = -1, g_mismatches = -1;

static void* changer(void* arg) {
  (void)arg;
  while (atomic_load(&g_ready) < kHelpers) sched_yield();
  usleep(20000); /* the joiner and the reader are really blocked now */
  const gid_t two[2] = {kG1, kG2};
  g_rc_setgroups = setgroups(2, two);
  scan_tasks("23401 23402", 0, &g_mismatch_setgroups);
  g_rc_initgroups = initgroups("mnp-user-in-no-group", kG3);
  scan_tasks("23403", 0, &g_mismatch_initgroups);
  g_rc_setgid = setgid(kId);
  g_rc_setuid = setuid(kId);
  g_tasks = scan_tasks("23403", 1, &g_mismatches);
  /* No longer root: a thread's setuid(0) fails with EPERM in errno. */
  errno = 0;
  g_rc_back = setuid(0);
  g_errno_back = errno;
  return NULL;
}

int main(void) {
  mnp_report_shim();
  if (geteuid() != 0) {
    printf("setuid: skipped (not root)\n");
    return 0;
  }
  if (pipe(g_pipe) != 0) return 1;
  pthread_t helpers[kHelpers], ch;
  /* Slot 1 (the sleeper) must exist before the joiner joins it. */
  if (pthread_create(&g_sleeper, NULL, sleeper, (void*)(intptr_t)1) != 0) return 1;
  helpers[1] = g_sleeper;
  if (pthread_create(&helpers[0], NULL, joiner, (void*)(intptr_t)0) != 0) return 1;
  if (pthread_create(&helpers[2], NULL, spinner, (void*)(intptr_t)2) != 0) return 1;
  if (pthread_create(&helpers[3], NULL, spinner, (void*)(intptr_t)3) != 0) return 1;
  if (pthread_create(&helpers[4], NULL, reader, (void*)(intptr_t)4) != 0) return 1;
  if (pthread_create(&ch, NULL, changer, NULL) != 0) return 1;
  if (pthread_join(ch, NULL) != 0) return 1;

  atomic_store(&g_release, 1);
  if (write(g_pipe[1], "x", 1) != 1) return 1;
  /* The sleeper is joined by the joiner, not here. */
  for (int i = 0; i < kHelpers; i++)
    if (i != 1 && pthread_join(helpers[i], NULL) != 0) return 1;

  int threads_ok = sees_new_ids();
  for (int i = 0; i < kHelpers; i++) threads_ok = threads_ok && g_seen_ok[i];
  mnp_check("tasks", g_tasks);
  mnp_check("task_mismatches", g_mismatches + g_mismatch_setgroups + g_mismatch_initgroups);
  printf("setgroups rc=%d initgroups rc=%d setgid rc=%d setuid rc=%d\n", g_rc_setgroups, g_rc_initgroups, g_rc_setgid,
         g_rc_setuid);
  printf("all tasks changed groups: %s, then: %s\n", g_mismatch_setgroups == 0 ? "yes" : "no",
         g_mismatch_initgroups == 0 ? "yes" : "no");
  printf("all tasks changed: %s\n", g_tasks > 0 && g_mismatches == 0 ? "yes" : "no");
  printf("setuid(0) after: rc=%d %s\n", g_rc_back, g_errno_back == EPERM ? "EPERM" : "errno not EPERM");
  printf("all threads see the new ids: %s\n", threads_ok ? "yes" : "no");
  int rcs = g_rc_setgroups | g_rc_initgroups | g_rc_setgid | g_rc_setuid;
  int mism = g_mismatches | g_mismatch_setgroups | g_mismatch_initgroups;
  return (rcs == 0 && g_tasks > 0 && mism == 0 && threads_ok && g_rc_back == -1 && g_errno_back == EPERM) ? 0 : 1;
}
