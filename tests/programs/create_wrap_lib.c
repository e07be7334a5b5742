/* create_wrap_lib — a preloaded library whose pthread_create waits on a
 * condition variable until the new thread has started, as valgrind's drd
 * wraps it. create_wrap.c adds it to LD_PRELOAD after the shim, so the
 * shim's own thread creation (sysmon, Ms) goes through it too. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* Threads this wrapper made (read by create_wrap.c with dlsym). */
atomic_int create_wrap_calls;

struct start {
  void* (*fn)(void*);
  void* arg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started;
};

static void* trampoline(void* p) {
  struct start* s = p;
  void* (*fn)(void*) = s->fn;
  void* arg = s->arg;
  /* Late enough that the creator is sure to wait on the condition. */
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
  pthread_mutex_lock(&s->mu);
  s->started = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return fn(arg);
}

int pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*fn)(void*), void* arg) {
  static int (*next)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  if (!next)
    next = (int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*))dlsym(RTLD_NEXT, "pthread_create");
  struct start s = {fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  int r = next(t, a, trampoline, &s);
  if (r != 0) return r;
  pthread_mutex_lock(&s.mu);
  while (!s.started) pthread_cond_wait(&s.cv, &s.mu);
  pthread_mutex_unlock(&s.mu);
  atomic_fetch_add(&create_wrap_calls, 1);
  return 0;
}
