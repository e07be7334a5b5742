/* early_start — a program whose library (early_lib) creates a thread, waits
 * on a mutex, condvar, semaphore and futex, and does file, pipe, poll,
 * sleep, signal and dlopen calls in its constructor, before main.  Linked
 * with an allocator of its own (jemalloc) in the early_start_jemalloc build:
 * its first malloc calls the interposed syscall before anything else.
 * main prints what the constructor saw, then does the same with threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnp_check.h"

extern char early_log[];

static void* churn(void* arg) {
  long n = (long)arg;
  for (int i = 0; i < 200; i++) {
    char* p = malloc(16 + (size_t)(i * n) % 1000);
    memset(p, 1, 16);
    free(p);
  }
  return (void*)n;
}

int main(void) {
  mnp_report_shim();
  fputs(early_log, stdout);
  pthread_t t[16];
  long sum = 0;
  for (long i = 0; i < 16; i++) pthread_create(&t[i], NULL, churn, (void*)i);
  for (int i = 0; i < 16; i++) {
    void* v;
    pthread_join(t[i], &v);
    sum += (long)v;
  }
  printf("threads after main %ld\n", sum);
  return 0;
}
