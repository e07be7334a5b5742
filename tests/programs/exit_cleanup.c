/* exit_cleanup — pthread_exit and cleanup handlers, in C.
 *
 * Built twice from this source: as plain C (pthread_cleanup_push uses
 * glibc's setjmp-based cancel buffers) and with -fexceptions (it uses
 * __attribute__((cleanup)) and pthread_exit unwinds with the forced-unwind
 * machinery).  Both must print the same thing.
 *
 * Each thread logs into its own buffer; main prints the logs and the values
 * pthread_join returned, after all joins, in thread order.
 *
 *   nested    three handlers pushed in three nested functions, pthread_exit
 *             from the innermost: handlers run C, B, A; join sees 101.
 *   pop       pthread_cleanup_pop(1) runs its handler, pop(0) does not; the
 *             thread returns normally: join sees 102.
 *   deep      pthread_exit 60 frames deep with handlers at depths 0 and 30.
 *   key       a pthread_key destructor that re-sets its value twice (three
 *             destructor rounds), plus a handler: handler first, then keys.
 *   plain     pthread_exit with no handlers at all: join sees 105.
 *
 * Fails when handlers are skipped, run twice, run in the wrong order, the
 * exit value is lost, key destructors do not run (or run too often), or the
 * thread never terminates (runner timeout).  The exit status is 1 when a log
 * or a join value differs from what glibc does. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mnp_check.h"

enum { kThreads = 5, kLogSize = 256 };

static char g_log[kThreads][kLogSize];
static pthread_key_t g_key;

static void log_add(int id, const char* what) {
  size_t len = strlen(g_log[id]);
  snprintf(g_log[id] + len, kLogSize - len, "%s%s", len ? " " : "", what);
}

struct handler_arg {
  int id;
  const char* name;
};

static void handler(void* p) {
  const struct handler_arg* h = p;
  log_add(h->id, h->name);
}

/* ---- nested ---- */
static void nested_c(int id) {
  struct handler_arg c = {id, "C"};
  pthread_cleanup_push(handler, &c);
  log_add(id, "exit");
  pthread_exit((void*)(intptr_t)101);
  pthread_cleanup_pop(0);
}
static void nested_b(int id) {
  struct handler_arg b = {id, "B"};
  pthread_cleanup_push(handler, &b);
  nested_c(id);
  log_add(id, "not-reached-b");
  pthread_cleanup_pop(0);
}
static void* nested_main(void* arg) {
  int id = (int)(intptr_t)arg;
  struct handler_arg a = {id, "A"};
  pthread_cleanup_push(handler, &a);
  nested_b(id);
  log_add(id, "not-reached-a");
  pthread_cleanup_pop(0);
  return (void*)(intptr_t)-1;
}

/* ---- pop ---- */
static void* pop_main(void* arg) {
  int id = (int)(intptr_t)arg;
  struct handler_arg run = {id, "popped-run"}, skip = {id, "popped-skip"};
  pthread_cleanup_push(handler, &run);
  pthread_cleanup_push(handler, &skip);
  log_add(id, "body");
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(1);
  log_add(id, "return");
  return (void*)(intptr_t)102;
}

/* ---- deep ---- */
static volatile int g_exit_deep = 1; /* keeps GCC from calling the recursion infinite */
static int deep(int id, int depth) {
  if (depth == 30) {
    struct handler_arg h = {id, "depth30"};
    int r = 0;
    pthread_cleanup_push(handler, &h);
    r = deep(id, depth + 1);
    pthread_cleanup_pop(0);
    return r + 1;
  }
  if (depth == 60) {
    log_add(id, "exit-at-60");
    if (g_exit_deep) pthread_exit((void*)(intptr_t)103);
    return 0;
  }
  return deep(id, depth + 1) + 1;
}
static void* deep_main(void* arg) {
  int id = (int)(intptr_t)arg;
  struct handler_arg h = {id, "depth0"};
  int r = 0;
  pthread_cleanup_push(handler, &h);
  r = deep(id, 1);
  pthread_cleanup_pop(0);
  return (void*)(intptr_t)r;
}

/* ---- key ---- */
static int g_key_rounds[kThreads];
static void key_destructor(void* value) {
  int id = (int)(intptr_t)value - 1;
  if (id < 0 || id >= kThreads) return;
  char what[32];
  snprintf(what, sizeof what, "key-round%d", ++g_key_rounds[id]);
  log_add(id, what);
  if (g_key_rounds[id] < 3) pthread_setspecific(g_key, value);
}
static void* key_main(void* arg) {
  int id = (int)(intptr_t)arg;
  struct handler_arg h = {id, "handler"};
  pthread_setspecific(g_key, (void*)(intptr_t)(id + 1));
  pthread_cleanup_push(handler, &h);
  pthread_exit((void*)(intptr_t)104);
  pthread_cleanup_pop(0);
  return NULL;
}

/* ---- no handlers ---- */
static void* plain_main(void* arg) {
  int id = (int)(intptr_t)arg;
  log_add(id, "exit");
  pthread_exit((void*)(intptr_t)105);
}

int main(void) {
  mnp_report_shim();
  if (pthread_key_create(&g_key, key_destructor) != 0) return 1;
  static const char* const names[kThreads] = {"nested", "pop", "deep", "key", "plain"};
  void* (*const fns[kThreads])(void*) = {nested_main, pop_main, deep_main, key_main, plain_main};
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, fns[i], (void*)(intptr_t)i) != 0) return 1;
  void* res[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_join(t[i], &res[i]) != 0) return 1;
  /* What glibc does natively; the runner also compares against the native run. */
  static const char* const expect_log[kThreads] = {"exit C B A", "body popped-run return", "exit-at-60 depth30 depth0",
                                                   "handler key-round1 key-round2 key-round3", "exit"};
  int ok = 1;
  for (int i = 0; i < kThreads; i++) {
    printf("%s: log=[%s] join=%ld\n", names[i], g_log[i], (long)(intptr_t)res[i]);
    ok = ok && strcmp(g_log[i], expect_log[i]) == 0 && (intptr_t)res[i] == 101 + i;
  }
  return ok ? 0 : 1;
}
