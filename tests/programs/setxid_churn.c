/* setxid_churn — credential changes while kernel threads are made and end.
 *
 * Threads that name themselves (PR_SET_NAME) each get a kernel thread of
 * their own under the shim, made when they name themselves and ended when
 * they exit. Two makers keep such threads coming and going while a changer
 * thread calls setgroups 3,000 times, alternating between two group lists.
 * A kernel thread born or ending while a change is on its way to it once
 * aborted the shim (glibc's handler ran a stale request on a thread just
 * made) or could hang it (the broadcast waiting for a thread that would
 * never answer): an abort fails the comparison with the native run, a hang
 * the runner's timeout. Each call sets the whole list, so a change that
 * missed a thread would be repaired by the next: what is checked at the
 * end is one more call, made once the churn is over and the ended threads
 * are gone, which every /proc/self/task/ * /status must show.
 *
 * Root only: otherwise it prints a skip line (same output natively and
 * under the shim). */
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kChanges = 3000, kMakers = 2 };

static atomic_int g_stop;
static atomic_long g_named;

static void* named(void* arg) {
  (void)arg;
  prctl(PR_SET_NAME, "churn-named");
  atomic_fetch_add(&g_named, 1);
  return NULL;
}

static void* maker(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    pthread_t t;
    if (pthread_create(&t, NULL, named, NULL) != 0) return (void*)1;
    if (pthread_join(t, NULL) != 0) return (void*)1;
  }
  return NULL;
}

struct GroupsCheck {
  const char* want;
  int bad;
};

static void check_groups(const char* status, void* ctx) {
  struct GroupsCheck* c = ctx;
  const char* g = strstr(status, "Groups:");
  if (g == NULL || strncmp(g, c->want, strlen(c->want)) != 0) c->bad++;
}

/* Tasks whose "Groups:" line is not `want`; -1 if /proc cannot be read. */
static int mismatching_tasks(const char* want) {
  struct GroupsCheck c = {want, 0};
  return mnp_for_each_task_status(check_groups, &c) < 0 ? -1 : c.bad;
}

static int g_failed_calls;

static void* changer(void* arg) {
  (void)arg;
  const gid_t a[2] = {31001, 31002}, b[1] = {31003};
  for (int i = 0; i < kChanges; i++) {
    int rc = (i % 2) ? setgroups(1, b) : setgroups(2, a);
    if (rc != 0) g_failed_calls++;
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  if (geteuid() != 0) {
    printf("setxid_churn: skipped (not root)\n");
    return 0;
  }
  pthread_t makers[kMakers], ch;
  for (int i = 0; i < kMakers; i++)
    if (pthread_create(&makers[i], NULL, maker, NULL) != 0) return 1;
  while (atomic_load(&g_named) < 20) usleep(1000);
  if (pthread_create(&ch, NULL, changer, NULL) != 0) return 1;
  if (pthread_join(ch, NULL) != 0) return 1;
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kMakers; i++)
    if (pthread_join(makers[i], NULL) != 0) return 1;
  /* Until the count of kernel threads holds still for 50 ms (at most 5 s). */
  long long last = -1;
  for (int still = 0, i = 0; still < 5 && i < 500; i++) {
    long long now = mnp_kernel_threads();
    still = now == last ? still + 1 : 0;
    last = now;
    usleep(10000);
  }
  const gid_t final[2] = {31004, 31005};
  if (setgroups(2, final) != 0) g_failed_calls++;
  int bad = mismatching_tasks("Groups:\t31004 31005 \n");
  mnp_check("task_mismatches", bad);
  printf("setgroups calls failed: %d\n", g_failed_calls);
  printf("all tasks have the last groups: %s\n", bad == 0 ? "yes" : "no");
  return g_failed_calls == 0 && bad == 0 ? 0 : 1;
}
