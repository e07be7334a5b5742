/* altstack_rsp.c — threads whose stack pointer points into their data, as
 * Erlang's JIT keeps an Erlang process's stack in %rsp, take every signal on
 * their alternate signal stacks.
 *
 * Such a thread relies on the kernel pushing a signal frame only where its
 * SA_ONSTACK handlers run: on the alternate stack it enabled. Under the
 * shim the runtime's own signal (preemption requests, blocked-thread
 * checks) also reaches it; a frame pushed at %rsp overwrote the words below
 * it (beam.smp died of "size_object: bad tag" or SIGSEGV). Here 4 threads,
 * each with an alternate stack, spin with %rsp in the middle of a patterned
 * buffer until 300 ms after the start, then check every word of their
 * buffers. Meanwhile main sleeps 100 ms: the spinners reach no scheduling
 * point and no stack walk can see through their frames, so under the shim
 * at 1 P main runs before they end only if their P is handed on while they
 * spin. Stdout: two lines. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kThreads = 4, kWords = 8192, kAltSize = 64 * 1024 };

static uint64_t deadline;  // TSC value at which the spinners stop
static int bad_words[kThreads];
static int alt_failed;

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
  stack_t ss = {.ss_sp = malloc(kAltSize), .ss_size = kAltSize, .ss_flags = 0};
  if (!ss.ss_sp || sigaltstack(&ss, NULL) != 0) {
    __atomic_store_n(&alt_failed, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  uint64_t* buf = aligned_alloc(64, kWords * sizeof(uint64_t));
  for (int i = 0; i < kWords; i++) buf[i] = pattern(t, i);
  spin_with_sp(&buf[kWords / 2], deadline);
  for (int i = 0; i < kWords; i++) bad_words[t] += buf[i] != pattern(t, i);
  free(buf);
  return NULL;
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
  for (int t = 0; t < kThreads; t++)
    if (pthread_create(&th[t], NULL, spinner, (void*)(intptr_t)t) != 0) {
      perror("pthread_create");
      return 1;
    }
  usleep(100 * 1000);
  uint64_t woke = tsc();
  int bad = 0;
  for (int t = 0; t < kThreads; t++) {
    pthread_join(th[t], NULL);
    bad += bad_words[t];
  }
  char detail[96];
  snprintf(detail, sizeof detail, "%d words overwritten below the threads' stack pointers%s", bad,
           alt_failed ? "; sigaltstack failed" : "");
  mnp_report_case("signal frames only on the alternate stacks", bad == 0 && !alt_failed, detail);
  snprintf(detail, sizeof detail, "main woke %.0f ms after the spinners' end", (double)(woke - deadline) / per_ms);
  mnp_report_case("main ran while they spun", woke < deadline, detail);
  return 0;
}
