/* altstack_rsp.c — alternate signal stacks under the runtime's signal.
 *
 * 1. Threads whose stack pointer points into their data, as Erlang's JIT
 *    keeps an Erlang process's stack in %rsp, take every signal on their
 *    own alternate stacks. Under the shim the runtime's signal (preemption
 *    requests, blocked-thread checks) also reaches them; a frame pushed at
 *    %rsp overwrote the words below it (beam.smp died of "size_object: bad
 *    tag" or SIGSEGV). Here 4 threads, each with an alternate stack, spin
 *    with %rsp in the middle of a patterned buffer for 300 ms, then check
 *    every word of their buffers.
 * 2. Threads that all enable one and the same alternate stack, as varnishd
 *    does for its crash report, and spend their time in libc and the
 *    runtime (mutex, condvar, malloc, memcpy), more of them than Ps: with
 *    the runtime's handler on that one stack on several kernel threads at
 *    once, varnishd's workers died of SIGSEGV and failed asserts. Each
 *    also reads its alternate stack back: the one it set.
 * 3. Threads with small alternate stacks (8 KiB, as Rust gives every
 *    thread) spinning in plain C code while main sleeps 100 ms: main must
 *    wake before they end, at 1 P too, so the runtime must stop them. Its
 *    handler runs on those stacks now, too small for the safe-point walk,
 *    which runs on the scheduler's idle stack instead.
 * Stdout: one line per part. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 4, kWords = 8192, kAltSize = 64 * 1024 };

static uint64_t deadline;  // TSC value at which the spinners stop
static int bad_words[kThreads];
static int alt_failed;

/* Enables [sp, sp + size) as the calling thread's alternate stack and
 * checks that it reads back; on failure notes it for the report. */
static int enable_alt(void* sp, size_t size) {
  stack_t ss = {.ss_sp = sp, .ss_size = size, .ss_flags = 0}, back;
  if (sp && sigaltstack(&ss, NULL) == 0 && sigaltstack(NULL, &back) == 0 && back.ss_sp == sp && back.ss_size == size &&
      !(back.ss_flags & SS_DISABLE))
    return 1;
  __atomic_store_n(&alt_failed, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Starts n threads running fn(i); 0, or 1 after perror. */
static int start_all(pthread_t* th, int n, void* (*fn)(void*)) {
  for (int t = 0; t < n; t++)
    if (pthread_create(&th[t], NULL, fn, (void*)(intptr_t)t) != 0) {
      perror("pthread_create");
      return 1;
    }
  return 0;
}

static void join_all(pthread_t* th, int n) {
  for (int t = 0; t < n; t++) pthread_join(th[t], NULL);
}

static uint64_t pattern(int t, int i) { return (uint64_t)(t * kWords + i + 1) * 0x9E3779B97F4A7C15ull; }

static uint64_t tsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t)hi << 32 | lo;
}

/* Spins with %rsp at top until the TSC passes end; touches no memory
 * (nothing is called, nothing pushed). */
static void spin_with_sp(uint64_t* top, uint64_t end) {
  __asm__ volatile(
      "mov %%rsp, %%rbx\n\t"
      "mov %[top], %%rsp\n\t"
      "1: pause\n\t"
      "rdtsc\n\t"
      "shl $32, %%rdx\n\t"
      "or %%rdx, %%rax\n\t"
      "cmp %[end], %%rax\n\t"
      "jb 1b\n\t"
      "mov %%rbx, %%rsp\n\t"
      :
      : [top] "r"(top), [end] "r"(end)
      : "rax", "rdx", "rbx", "memory", "cc");
}

static void* spinner(void* arg) {
  int t = (int)(intptr_t)arg;
  if (!enable_alt(malloc(kAltSize), kAltSize)) return NULL;
  uint64_t* buf = aligned_alloc(64, kWords * sizeof(uint64_t));
  for (int i = 0; i < kWords; i++) buf[i] = pattern(t, i);
  spin_with_sp(&buf[kWords / 2], deadline);
  for (int i = 0; i < kWords; i++) bad_words[t] += buf[i] != pattern(t, i);
  free(buf);
  return NULL;
}

/* Part 2: one alternate stack for all the busy threads. */
enum { kBusy = 6 };
static char* shared_alt;
static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cv = PTHREAD_COND_INITIALIZER;
static long busy_total;
static long busy_own[kBusy];
static int busy_bad;

static void* busy(void* arg) {
  int t = (int)(intptr_t)arg;
  if (!enable_alt(shared_alt, kAltSize)) return NULL;
  char src[512], dst[512];
  for (uint64_t now = tsc(); now < deadline; now = tsc()) {
    memset(src, t + 1, sizeof src);
    char* p = malloc(64 + (size_t)(now % 512));
    pthread_mutex_lock(&busy_mu);
    busy_total++;
    busy_own[t]++;
    memcpy(dst, src, sizeof dst);
    pthread_cond_signal(&busy_cv);
    pthread_mutex_unlock(&busy_mu);
    if (dst[0] != t + 1 || dst[511] != t + 1) __atomic_store_n(&busy_bad, 1, __ATOMIC_RELAXED);
    free(p);
  }
  return NULL;
}

/* Part 3: small alternate stacks, plain code. */
enum { kSmallAlt = 8 * 1024 };

static __attribute__((noinline)) uint64_t spin_plain(uint64_t end) {
  uint64_t x = 1;
  while (tsc() < end) x = x * 3 + 1;
  return x;
}

static void* small_alt_spinner(void* arg) {
  (void)arg;
  if (!enable_alt(malloc(kSmallAlt), kSmallAlt)) return NULL;
  return (void*)(uintptr_t)(spin_plain(deadline) & 1);
}

int main(void) {
  mnp_report_shim();
  /* TSC ticks per ms, over a 20 ms sleep. */
  uint64_t t0 = tsc();
  double m0 = mnp_now_ms();
  usleep(20 * 1000);
  double per_ms = (tsc() - t0) / (mnp_now_ms() - m0);
  deadline = tsc() + (uint64_t)(300 * per_ms);
  pthread_t th[kThreads];
  if (start_all(th, kThreads, spinner)) return 1;
  join_all(th, kThreads);
  int bad = 0;
  for (int t = 0; t < kThreads; t++) bad += bad_words[t];
  char detail[96];
  snprintf(detail, sizeof detail, "%d words overwritten below the threads' stack pointers%s", bad,
           alt_failed ? "; sigaltstack failed" : "");
  mnp_report_case("signal frames only on the alternate stacks", bad == 0 && !alt_failed, detail);

  shared_alt = malloc(kAltSize);
  deadline = tsc() + (uint64_t)(300 * per_ms);
  pthread_t bt[kBusy];
  if (start_all(bt, kBusy, busy)) return 1;
  join_all(bt, kBusy);
  long sum = 0;
  for (int t = 0; t < kBusy; t++) sum += busy_own[t];
  snprintf(detail, sizeof detail, "total %ld, threads' own counts %ld%s", busy_total, sum,
           busy_bad ? ", a copy went wrong" : "");
  mnp_report_case("one alternate stack, busy in libc and the runtime", sum == busy_total && !busy_bad && !alt_failed,
                  detail);

  deadline = tsc() + (uint64_t)(300 * per_ms);
  pthread_t st[kThreads];
  if (start_all(st, kThreads, small_alt_spinner)) return 1;
  usleep(100 * 1000);
  uint64_t woke = tsc();
  join_all(st, kThreads);
  snprintf(detail, sizeof detail, "main woke %.0f ms after the spinners' end%s", ((double)woke - deadline) / per_ms,
           alt_failed ? "; sigaltstack failed" : "");
  mnp_report_case("small alternate stacks: main ran while they spun", woke < deadline && !alt_failed, detail);
  return 0;
}
