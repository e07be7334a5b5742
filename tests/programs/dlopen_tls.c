/* dlopen_tls — dlopen() a library with initial-exec TLS while threads
 * already exist; every existing thread must see the initial values and its
 * own copy.  argv[1]: full path of libmnp_tls_lib.so. */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "mnp_check.h"

#define N 6

static atomic_int loaded;
static atomic_int ready;
static atomic_int set_done;
static int (*p_get_value)(void);
static void (*p_set_value)(int);
static const char* (*p_get_buf)(void);
static atomic_int good_initial, good_buf, good_own, good_after;

static void* worker(void* arg) {
  long i = (long)arg;
  atomic_fetch_add(&ready, 1);
  while (!atomic_load(&loaded)) sched_yield();
  if (p_get_value() == 42) atomic_fetch_add(&good_initial, 1);
  if (strcmp(p_get_buf(), "initial") == 0) atomic_fetch_add(&good_buf, 1);
  p_set_value(100 + (int)i);
  sched_yield();
  if (p_get_value() == 100 + i) atomic_fetch_add(&good_own, 1);
  atomic_fetch_add(&set_done, 1);
  while (atomic_load(&set_done) < N) sched_yield(); /* all have written */
  if (p_get_value() == 100 + i) atomic_fetch_add(&good_after, 1);
  return NULL;
}

static void* late_worker(void* arg) {
  (void)arg;
  return (void*)(long)p_get_value();
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc < 2) {
    fprintf(stderr, "usage: dlopen_tls LIBPATH\n");
    return 2;
  }
  pthread_t t[N];
  for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  while (atomic_load(&ready) < N) sched_yield();
  void* h = dlopen(argv[1], RTLD_NOW);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  p_get_value = (int (*)(void))dlsym(h, "get_value");
  p_set_value = (void (*)(int))dlsym(h, "set_value");
  p_get_buf = (const char* (*)(void))dlsym(h, "get_buf");
  if (!p_get_value || !p_set_value || !p_get_buf) {
    fprintf(stderr, "dlsym failed\n");
    return 1;
  }
  atomic_store(&loaded, 1);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  printf("initial value ok %d/%d\n", atomic_load(&good_initial), N);
  printf("initial buf ok %d/%d\n", atomic_load(&good_buf), N);
  printf("own value ok %d/%d\n", atomic_load(&good_own), N);
  printf("independent ok %d/%d\n", atomic_load(&good_after), N);
  printf("main value %d buf %s\n", p_get_value(), p_get_buf());
  /* A thread created after the dlopen starts with the initial image too. */
  pthread_t late;
  pthread_create(&late, NULL, late_worker, NULL);
  void* r;
  pthread_join(late, &r);
  printf("late thread value %d\n", (int)(long)r);
  return 0;
}
