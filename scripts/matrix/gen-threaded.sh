# scripts/matrix/gen-threaded.sh — sourced by the tool cases: builds
# ./threaded, a small pthread program (8 threads, a mutex, a condition
# variable, a sleep) that prints a deterministic result.
mx_gen_threaded() {
  cat >threaded.c <<'C'
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long total, arrived;
long result;
__attribute__((noinline)) void done(void) { __asm__ volatile("" ::: "memory"); }
static void* work(void* a) {
  long i = (long)a, s = 0;
  for (long k = 0; k < 3000000; k++) s += (k * (i + 1)) % 7;
  usleep(1000);
  pthread_mutex_lock(&mu);
  total += s;
  if (++arrived == 8) pthread_cond_broadcast(&cv);
  while (arrived < 8) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  return 0;
}
int main(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, work, (void*)i);
  for (int i = 0; i < 8; i++) pthread_join(t[i], 0);
  result = total;
  done();
  printf("total %ld\n", total);
  return 0;
}
C
  gcc -O1 -g -pthread -o threaded threaded.c
}
