/* sync_util.h — small helpers shared by the synchronization programs in
 * tests/programs/sync/ (C only): errno names for deterministic output,
 * absolute deadlines, a kernel-thread peak sampler and a failure counter.
 * Everything is header-only and static; no program links anything extra. */
#ifndef MNP_TESTS_PROGRAMS_SYNC_UTIL_H
#define MNP_TESTS_PROGRAMS_SYNC_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "../mnp_check.h"

/* Symbolic name of an errno value (0 prints as "0"). */
static inline const char* err_name(int e) {
  switch (e) {
    case 0:
      return "0";
    case EAGAIN:
      return "EAGAIN";
    case EBUSY:
      return "EBUSY";
    case EDEADLK:
      return "EDEADLK";
    case EINTR:
      return "EINTR";
    case EINVAL:
      return "EINVAL";
    case ENOTRECOVERABLE:
      return "ENOTRECOVERABLE";
    case EOVERFLOW:
      return "EOVERFLOW";
    case EOWNERDEAD:
      return "EOWNERDEAD";
    case EPERM:
      return "EPERM";
    case ESRCH:
      return "ESRCH";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ENOMEM:
      return "ENOMEM";
    case ENOSYS:
      return "ENOSYS";
    case ENOENT:
      return "ENOENT";
    default:
      return "E?";
  }
}

/* Failures found so far; every program exits nonzero when it is not 0. */
static atomic_int g_failures;

/* Prints "name=got" and counts a failure (with a FAIL line on stdout, which
 * then also differs from the expected output) when got != want. */
static inline void expect_err(const char* name, int got, int want) {
  printf("%s=%s\n", name, err_name(got));
  if (got != want) {
    printf("FAIL %s: got %s (%d), want %s\n", name, err_name(got), got, err_name(want));
    atomic_fetch_add(&g_failures, 1);
  }
}

/* Counts a failure with a message when cond is false. */
#define SYNC_CHECK(cond)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      atomic_fetch_add(&g_failures, 1);                      \
    }                                                        \
  } while (0)

/* now(clock) + ms milliseconds, normalised. */
static inline struct timespec deadline_ms(clockid_t clock, long ms) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static inline double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Peak of the kernel thread count as sampled by kthreads_sample(). */
static atomic_llong g_kthreads_max;

static inline void kthreads_sample(void) {
  long long k = mnp_kernel_threads();
  long long cur = atomic_load(&g_kthreads_max);
  while (k > cur && !atomic_compare_exchange_weak(&g_kthreads_max, &cur, k)) {
  }
}

/* Reports kthreads_max and returns the exit status from g_failures. */
static inline int sync_finish(const char* prog) {
  int f = atomic_load(&g_failures);
  printf("%s: %s\n", prog, f == 0 ? "ok" : "FAILED");
  return f == 0 ? 0 : 1;
}

#endif /* MNP_TESTS_PROGRAMS_SYNC_UTIL_H */
