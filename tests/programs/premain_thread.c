/* premain_thread — threads created by a constructor, before main (under the
 * shim: real glibc threads, since the runtime starts at main).  main joins
 * them, and one of them joins a thread that main created. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "mnp_check.h"

static pthread_t ctor_sleeper, ctor_joiner;
static int ctor_rc1 = -1, ctor_rc2 = -1;
static pthread_t published_t;
static atomic_int published;
static atomic_int joiner_rc = -1;
static void* joiner_value;

static void* sleeper(void* arg) {
  (void)arg;
  usleep(50000);
  return (void*)7;
}

static void* joiner(void* arg) {
  (void)arg;
  while (!atomic_load(&published)) sched_yield();
  void* r = NULL;
  int rc = pthread_join(published_t, &r);
  joiner_value = r;
  atomic_store(&joiner_rc, rc);
  return r;
}

__attribute__((constructor)) static void premain(void) {
  ctor_rc1 = pthread_create(&ctor_sleeper, NULL, sleeper, NULL);
  ctor_rc2 = pthread_create(&ctor_joiner, NULL, joiner, NULL);
}

static void* five(void* arg) {
  (void)arg;
  return (void*)5;
}

static void* nine(void* arg) {
  (void)arg;
  usleep(20000);
  return (void*)9;
}

int main(void) {
  mnp_report_shim();
  printf("constructor create %d %d\n", ctor_rc1, ctor_rc2);
  pthread_t n, t;
  pthread_create(&n, NULL, five, NULL);
  void* r1 = NULL;
  void* r2 = NULL;
  int j1 = pthread_join(ctor_sleeper, &r1);
  int j2 = pthread_join(n, &r2);
  printf("join constructor thread rc %d value %ld\n", j1, (long)r1);
  printf("join normal thread rc %d value %ld\n", j2, (long)r2);

  pthread_create(&t, NULL, nine, NULL);
  published_t = t;
  atomic_store(&published, 1);
  void* r3 = NULL;
  int j3 = pthread_join(ctor_joiner, &r3);
  printf("join constructor joiner rc %d value %ld\n", j3, (long)r3);
  printf("joiner's join of main's thread rc %d value %ld\n", atomic_load(&joiner_rc), (long)joiner_value);
  return 0;
}
