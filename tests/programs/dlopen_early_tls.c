/* dlopen_early_tls — a library with initial-exec TLS dlopen'ed by the
 * executable's constructor, before main (after the shim's own constructor,
 * before the runtime is up). Threads made later set their copy; a later
 * dlopen must not put the initial image back over it (the block was
 * neither below the shim's start-up mark nor remembered). It runs itself
 * again with MNP_PREEMPT=0: with preemption on, the runtime's own dlopen
 * of libunwind, before any thread set a value, hid it. argv[1]:
 * libmnp_tls_lib.so, argv[2]: libmnp_plain_lib.so. Stdout: the same
 * natively. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mnp_check.h"

static int (*get_value)(void);
static void (*set_value)(int);
static pthread_barrier_t set_done, reopened;

__attribute__((constructor)) static void load_early(int argc, char** argv) {
  if (argc < 3) return;
  void* h = dlopen(argv[1], RTLD_NOW);
  if (!h) return;
  get_value = (int (*)(void))dlsym(h, "get_value");
  set_value = (void (*)(int))dlsym(h, "set_value");
}

static void* worker(void* arg) {
  long id = (long)arg;
  set_value(100 + (int)id);
  pthread_barrier_wait(&set_done);
  pthread_barrier_wait(&reopened);
  return (void*)(long)(get_value() == 100 + id);
}

int main(int argc, char** argv) {
  if (!getenv("MNP_PREEMPT")) {
    setenv("MNP_PREEMPT", "0", 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    return 1;
  }
  mnp_report_shim();
  if (argc < 3 || !get_value || !set_value) {
    fprintf(stderr, "usage: dlopen_early_tls TLSLIB PLAINLIB (the constructor's dlopen failed)\n");
    return 2;
  }
  pthread_barrier_init(&set_done, NULL, 5);
  pthread_barrier_init(&reopened, NULL, 5);
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void*)i);
  pthread_barrier_wait(&set_done);
  if (!dlopen(argv[2], RTLD_NOW)) return 1;
  pthread_barrier_wait(&reopened);
  int kept = 0;
  for (int i = 0; i < 4; i++) {
    void* r;
    pthread_join(t[i], &r);
    kept += r != NULL;
  }
  printf("initial value in main %d; values kept over a later dlopen %d of 4\n", get_value(), kept);
  return 0;
}
