/* sched_kernel.c — scheduling attributes reach the kernel.
 *
 * A thread's policy, priority, nice value and CPU mask are the kernel's
 * business: reporting them back is not enough, the kernel must schedule the
 * thread by them. Each thread here sets or is given attributes, parks a few
 * times while busy threads keep the scheduler moving (under the shim an
 * unwired G would resume on another kernel thread), and then reads what the
 * kernel holds for the thread it runs on: /proc/thread-self/stat (policy,
 * rt_priority, nice) and /proc/thread-self/status (Cpus_allowed_list).
 * Scenarios:
 *   fifo-attr   created with PTHREAD_EXPLICIT_SCHED, SCHED_FIFO 10;
 *   self-rr     sets SCHED_RR 5 on itself with pthread_setschedparam, then
 *               SCHED_OTHER again: the kernel thread goes back to normal;
 *   other-rr    main sets SCHED_RR 7 on a thread that sleeps; the thread
 *               sees it in the kernel once it has woken;
 *   sched0      sched_setscheduler(0, SCHED_FIFO 3) and sched_getscheduler(0),
 *               sched_getparam(0): 0 is the calling thread;
 *   affinity    pthread_setaffinity_np(self, {CPU 0}): runs on CPU 0 only,
 *               then the whole mask again;
 *   pinned creator  a thread pinned to CPU 0 creates one with an attribute
 *               mask of the last CPU, all with 8-byte masks (libgomp's
 *               OMP_PROC_BIND; the shim once refused both with EINVAL);
 *   nice        setpriority(PRIO_PROCESS, 0, 7) and getpriority;
 *   nice(3)     nice(4) from a thread at nice 0 (glibc's nice calls its own
 *               setpriority, not the exported one): returns 4, getpriority
 *               and the kernel say 4, and no later thread inherits it;
 *   plain       threads that set nothing, run after the others: the kernel
 *               threads they run on have the process's attributes (nothing
 *               leaked from the threads above).
 * Real-time policies need CAP_SYS_NICE: without it every RT line reads
 * EPERM, natively and under the shim alike. Stdout: one line per check. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop_busy;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

/* policy, rt_priority and nice of the kernel thread running the caller
 * (fields 41, 40 and 19 of stat; the comm field may hold spaces). */
static void kernel_view(int* policy, int* rtprio, int* nice) {
  char buf[2048];
  *policy = *rtprio = *nice = -99;
  if (mnp_read_small_file("/proc/thread-self/stat", buf, sizeof buf) < 0) return;
  char* p = strrchr(buf, ')');
  if (!p) return;
  p += 2; /* field 3 */
  long v[64];
  int n = 3;
  while (*p && n < 45) {
    v[n] = strtol(p, &p, 10);
    if (*p == ' ') p++;
    if (n == 3) { /* the state is a letter: strtol read nothing */
      while (*p && *p != ' ') p++;
      if (*p) p++;
    }
    n++;
  }
  if (n > 41) {
    *nice = (int)v[19];
    *rtprio = (int)v[40];
    *policy = (int)v[41];
  }
}

static void kernel_cpus(char* out, size_t cap) {
  char buf[4096];
  snprintf(out, cap, "?");
  if (mnp_read_small_file("/proc/thread-self/status", buf, sizeof buf) < 0) return;
  char* l = strstr(buf, "Cpus_allowed_list:");
  if (!l) return;
  l += strlen("Cpus_allowed_list:");
  while (*l == ' ' || *l == '\t') l++;
  size_t i = 0;
  while (l[i] && l[i] != '\n' && i + 1 < cap) {
    out[i] = l[i];
    i++;
  }
  out[i] = 0;
}

static void park_a_little(void) {
  for (int i = 0; i < 3; i++) usleep(2000);
}

static void report(const char* what) {
  int pol;
  struct sched_param sp;
  pthread_getschedparam(pthread_self(), &pol, &sp);
  int kpol, kpri, knice;
  kernel_view(&kpol, &kpri, &knice);
  pthread_mutex_lock(&out_mu);
  printf("%-22s reported %d/%d kernel policy %d rtprio %d nice %d\n", what, pol, sp.sched_priority, kpol, kpri, knice);
  pthread_mutex_unlock(&out_mu);
}

static void* busy(void* a) {
  (void)a;
  while (!atomic_load(&stop_busy)) {
    for (volatile int i = 0; i < 20000; i++) {
    }
    usleep(300);
  }
  return NULL;
}

static void* fifo_attr(void* a) {
  (void)a;
  park_a_little();
  report("fifo-attr");
  return NULL;
}

static void* self_rr(void* a) {
  (void)a;
  struct sched_param sp = {.sched_priority = 5};
  int e = pthread_setschedparam(pthread_self(), SCHED_RR, &sp);
  pthread_mutex_lock(&out_mu);
  printf("self-rr set: %s\n", e ? strerror(e) : "ok");
  pthread_mutex_unlock(&out_mu);
  park_a_little();
  report("self-rr");
  sp.sched_priority = 0;
  e = pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
  park_a_little();
  report("self-rr back to other");
  return NULL;
}

static atomic_int other_ready;
static void* other_rr(void* a) {
  (void)a;
  atomic_store(&other_ready, 1);
  usleep(50 * 1000); /* main changes our policy meanwhile */
  park_a_little();
  report("other-rr");
  return NULL;
}

static void* sched0(void* a) {
  (void)a;
  struct sched_param sp = {.sched_priority = 3};
  int r = sched_setscheduler(0, SCHED_FIFO, &sp);
  int e = r ? errno : 0;
  park_a_little();
  struct sched_param got = {-1};
  sched_getparam(0, &got);
  int pol = sched_getscheduler(0);
  int kpol, kpri, knice;
  kernel_view(&kpol, &kpri, &knice);
  pthread_mutex_lock(&out_mu);
  printf("sched0 set %s: getscheduler %d getparam %d kernel policy %d rtprio %d\n", e ? strerror(e) : "ok", pol,
         got.sched_priority, kpol, kpri);
  pthread_mutex_unlock(&out_mu);
  return NULL;
}

static void* affinity(void* a) {
  (void)a;
  cpu_set_t one, all, got;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  sched_getaffinity(0, sizeof all, &all);
  int e = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  int cpu_ok = 1;
  for (int i = 0; i < 10; i++) {
    usleep(1000);
    if (sched_getcpu() != 0) cpu_ok = 0;
  }
  char k[64];
  kernel_cpus(k, sizeof k);
  pthread_getaffinity_np(pthread_self(), sizeof got, &got);
  pthread_mutex_lock(&out_mu);
  printf("affinity set %s: on cpu 0 %d, reported count %d, kernel %s\n", e ? strerror(e) : "ok", cpu_ok,
         CPU_COUNT(&got), k);
  pthread_mutex_unlock(&out_mu);
  pthread_setaffinity_np(pthread_self(), sizeof all, &all);
  park_a_little();
  char k2[64], want[64];
  kernel_cpus(k2, sizeof k2);
  snprintf(want, sizeof want, "0-%d", CPU_COUNT(&all) - 1);
  if (CPU_COUNT(&all) == 1) snprintf(want, sizeof want, "0");
  pthread_mutex_lock(&out_mu);
  printf("affinity back: kernel is the process mask %d\n", strcmp(k2, want) == 0);
  pthread_mutex_unlock(&out_mu);
  return NULL;
}

/* libgomp's OMP_PROC_BIND: the creator pins itself to CPU 0 and creates a
 * thread whose attribute names another CPU, with 8-byte masks. */
static void* on_last_cpu(void* a) {
  park_a_little();
  kernel_cpus((char*)a, 64);
  return NULL;
}
static void* pinned_creator(void* a) {
  (void)a;
  cpu_set_t all, m;
  sched_getaffinity(0, sizeof all, &all);
  int last = -1;
  for (int c = 0; c < 64; c++)
    if (CPU_ISSET(c, &all)) last = c;
  CPU_ZERO(&m);
  CPU_SET(0, &m);
  int e1 = pthread_setaffinity_np(pthread_self(), 8, &m);
  int e2 = sched_getaffinity(0, 8, &m) == 0 ? 0 : errno;
  CPU_ZERO(&m);
  CPU_SET(last, &m);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setaffinity_np(&at, 8, &m);
  pthread_t t;
  char k[64] = "";
  int e3 = pthread_create(&t, &at, on_last_cpu, k);
  if (e3 == 0) pthread_join(t, NULL);
  pthread_attr_destroy(&at);
  char want[16];
  snprintf(want, sizeof want, "%d", last);
  pthread_mutex_lock(&out_mu);
  printf("pinned creator: pin %s, 8-byte get %s, create on the last cpu %s, kernel there %d\n", strerror(e1),
         strerror(e2), strerror(e3), strcmp(k, want) == 0);
  pthread_mutex_unlock(&out_mu);
  return NULL;
}

static void* nice7(void* a) {
  (void)a;
  int r = setpriority(PRIO_PROCESS, 0, 7);
  park_a_little();
  errno = 0;
  int got = getpriority(PRIO_PROCESS, 0);
  int kpol, kpri, knice;
  kernel_view(&kpol, &kpri, &knice);
  pthread_mutex_lock(&out_mu);
  printf("nice set %d: getpriority %d kernel nice %d\n", r, got, knice);
  pthread_mutex_unlock(&out_mu);
  return NULL;
}

static void* nice_libc(void* a) {
  (void)a;
  errno = 0;
  int r = nice(4);
  int e = errno;
  park_a_little();
  int got = getpriority(PRIO_PROCESS, 0);
  int kpol, kpri, knice;
  kernel_view(&kpol, &kpri, &knice);
  pthread_mutex_lock(&out_mu);
  printf("nice(4) returned %d errno %d: getpriority %d kernel nice %d\n", r, e, got, knice);
  pthread_mutex_unlock(&out_mu);
  return NULL;
}

static void* plain(void* a) {
  (void)a;
  park_a_little();
  int kpol, kpri, knice;
  kernel_view(&kpol, &kpri, &knice);
  char k[64];
  kernel_cpus(k, sizeof k);
  cpu_set_t all;
  sched_getaffinity(0, sizeof all, &all);
  char want[64];
  snprintf(want, sizeof want, CPU_COUNT(&all) == 1 ? "0" : "0-%d", CPU_COUNT(&all) - 1);
  return (void*)(long)(kpol == 0 && kpri == 0 && knice == 0 && strcmp(k, want) == 0);
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  pthread_t b[3];
  for (int i = 0; i < 3; i++) pthread_create(&b[i], NULL, busy, NULL);

  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&at, SCHED_FIFO);
  struct sched_param sp = {.sched_priority = 10};
  pthread_attr_setschedparam(&at, &sp);
  pthread_t t;
  int e = pthread_create(&t, &at, fifo_attr, NULL);
  printf("fifo-attr create: %s\n", e ? strerror(e) : "ok");
  if (e == 0) pthread_join(t, NULL);
  pthread_attr_destroy(&at);

  pthread_create(&t, NULL, self_rr, NULL);
  pthread_join(t, NULL);

  pthread_create(&t, NULL, other_rr, NULL);
  while (!atomic_load(&other_ready)) usleep(1000);
  sp.sched_priority = 7;
  e = pthread_setschedparam(t, SCHED_RR, &sp);
  printf("other-rr set: %s\n", e ? strerror(e) : "ok");
  pthread_join(t, NULL);

  pthread_create(&t, NULL, sched0, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, affinity, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, pinned_creator, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, nice7, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, nice_libc, NULL);
  pthread_join(t, NULL);

  int plain_ok = 0;
  pthread_t p[8];
  for (int i = 0; i < 8; i++) pthread_create(&p[i], NULL, plain, NULL);
  for (int i = 0; i < 8; i++) {
    void* r;
    pthread_join(p[i], &r);
    plain_ok += (int)(long)r;
  }
  printf("plain threads on default kernel attributes: %d of 8\n", plain_ok);

  atomic_store(&stop_busy, 1);
  for (int i = 0; i < 3; i++) pthread_join(b[i], NULL);
  mnp_check("kthreads_max", mnp_kernel_threads());
  return 0;
}
