/* create_join_1m — a million sequential pthread_create + pthread_join.
 *
 * Checks that creating and joining threads leaks nothing: VmRSS is read after
 * a 10,000-cycle warm-up and again at the end (MNP-CHECK rss_growth_kib; the
 * runner asserts < 16 MiB).  The threads vary what they do, to catch leaks in
 * per-thread state that glibc normally frees at thread exit (malloc's tcache
 * and arena attachment, TLS, thread_local-like buffers):
 *   i%8 == 0  malloc/free of several small sizes
 *   i%8 == 1  one large (mmap-sized) calloc/free
 *   i%8 == 2  malloc, returned to main, freed by main (cross-thread free)
 *   i%8 == 3  writes a __thread array, returns a value computed from it
 *   i%8 == 4  realloc growth then free
 *   i%8 == 5  nothing
 *   i%8 == 6  strdup + snprintf into it, free
 *   i%8 == 7  medium calloc (8..32 KiB) / free
 * Every thread returns a value main can predict; wrong values count as errors.
 * stdout does not depend on the cycle count (the runner runs fewer cycles
 * natively, where each cycle costs ~36 us).
 *
 * usage: create_join_1m [cycles]   (default 1000000) */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnp_check.h"

enum { kWarmup = 10000 };

static __thread unsigned char t_scratch[512];
static __thread long t_uses;

static long expected(long i) { return (i * 2654435761L) % 1000003; }

static void* body(void* arg) {
  long i = (long)(intptr_t)arg;
  long want = expected(i);
  switch (i % 8) {
    case 0: {
      for (size_t sz = 16; sz <= 4096; sz *= 4) {
        char* p = malloc(sz + (size_t)(i % 13));
        if (p == NULL) return (void*)(intptr_t)-1;
        p[0] = (char)i;
        free(p);
      }
      break;
    }
    case 1: {
      char* p = calloc(1, 256 * 1024 + (size_t)(i % 4096));
      if (p == NULL) return (void*)(intptr_t)-1;
      p[4096] = 1;
      free(p);
      break;
    }
    case 2: {
      long* p = malloc(sizeof(long) * (1 + (size_t)(i % 64)));
      if (p == NULL) return (void*)(intptr_t)-1;
      p[0] = want;
      return p; /* main frees it */
    }
    case 3: {
      if (t_uses != 0 || t_scratch[7] != 0) return (void*)(intptr_t)-2; /* TLS not fresh */
      t_uses++;
      memset(t_scratch, (int)(i & 0x7f), sizeof t_scratch);
      long s = 0;
      for (size_t k = 0; k < sizeof t_scratch; k++) s += t_scratch[k];
      if (s != (long)sizeof t_scratch * (i & 0x7f)) return (void*)(intptr_t)-3;
      break;
    }
    case 4: {
      char* p = NULL;
      for (size_t sz = 8; sz <= 64 * 1024; sz *= 2) {
        char* q = realloc(p, sz);
        if (q == NULL) {
          free(p);
          return (void*)(intptr_t)-1;
        }
        p = q;
        p[sz - 1] = 1;
      }
      free(p);
      break;
    }
    case 5:
      break;
    case 6: {
      char* s = strdup("create-join-cycle-00000000000000000000");
      if (s == NULL) return (void*)(intptr_t)-1;
      snprintf(s + 18, 21, "%010ld", i);
      if (atol(s + 18) != i) want = -4;
      free(s);
      break;
    }
    case 7: {
      char* p = calloc(1, 8192 + (size_t)(i % 3) * 12288);
      if (p == NULL) return (void*)(intptr_t)-1;
      free(p);
      break;
    }
  }
  return (void*)(intptr_t)want;
}

static long run_cycles(long from, long to) {
  long errors = 0;
  for (long i = from; i < to; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, body, (void*)(intptr_t)i) != 0) {
      errors++;
      continue;
    }
    void* res = NULL;
    if (pthread_join(t, &res) != 0) {
      errors++;
      continue;
    }
    if (i % 8 == 2) {
      long* p = res;
      if (p == NULL || *p != expected(i)) errors++;
      free(p);
    } else if ((long)(intptr_t)res != expected(i)) {
      errors++;
    }
  }
  return errors;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  long cycles = argc > 1 ? atol(argv[1]) : 1000000;
  if (cycles < 2 * kWarmup) {
    fprintf(stderr, "create_join_1m: need at least %d cycles\n", 2 * kWarmup);
    return 2;
  }
  long errors = run_cycles(0, kWarmup);
  long long rss_before = mnp_rss_kib();
  errors += run_cycles(kWarmup, cycles);
  long long rss_after = mnp_rss_kib();
  mnp_check("cycles", cycles);
  mnp_check("rss_before_kib", rss_before);
  mnp_check("rss_after_kib", rss_after);
  mnp_check("rss_growth_kib", rss_after - rss_before);
  printf("create_join: errors=%ld\n", errors);
  return errors == 0 && rss_before > 0 && rss_after > 0 ? 0 : 1;
}
