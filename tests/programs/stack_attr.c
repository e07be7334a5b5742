/* stack_attr.c — a thread's stack is what its attribute asked for, and
 * pthread_getattr_np says what it really is.
 *
 * Scenarios (each overflow runs in a forked child, whose end is printed):
 *   - stack sizes PTHREAD_STACK_MIN, 64 KiB and 1 MiB with a one-page guard,
 *     and 64 KiB with a three-page guard: the thread's stack pointer lies in
 *     the stack pthread_getattr_np reports, the reported guard is the
 *     requested one, the reported size at least the requested one (for the
 *     first thread, which natively gets a fresh stack: exactly that, with
 *     the first frame at most that far above the guard; under mnpthread the
 *     stack was once bigger, so an overflow by the requested size missed
 *     the guard); a
 *     write to the lowest and to the highest byte of the guard, and a
 *     runaway recursion, each kill the child with SIGSEGV. (Under mnpthread
 *     the minimum-size stack once had no working guard.)
 *   - a stack that a thread of the same attributes used before: the same
 *     size twice in a row gets the same stack the second time (glibc's
 *     stack cache does that, and so does mnpthread's cache of Gs of other
 *     sizes than the default); sizes and guards alternated each report
 *     their own guard and a size from the requested one to 4 times that
 *     (glibc hands out a cached stack up to 4 times too big); a reused
 *     stack's guard still kills an overflow.
 *   - guard size 0: reported as 0.
 *   - pthread_attr_setstack: no guard, and pthread_getattr_np reports the
 *     program's own block exactly.
 *   - the attribute object changed (stack size, guard) after
 *     pthread_create: the running thread still reports its own stack.
 *   - the main thread: its stack pointer lies in what pthread_getattr_np
 *     reports for it.
 * Everything printed is a relation, never an address or a size, so the
 * output is the same natively and under the shim. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

#define PAGE 4096

struct report {
  int ok;
  uintptr_t lo, hi, sp;
  size_t size, guard;
};

static struct report g_rep;
static int g_mode; /* what the thread does after it looked at itself */
enum { kLook, kTouchGuardLow, kTouchGuardHigh, kRecurse, kWaitFlag };
static volatile int g_flag;

static void look(struct report* r) {
  pthread_attr_t a;
  void* addr = NULL;
  size_t size = 0, guard = 0;
  volatile char here;
  r->ok = pthread_getattr_np(pthread_self(), &a) == 0 && pthread_attr_getstack(&a, &addr, &size) == 0 &&
          pthread_attr_getguardsize(&a, &guard) == 0;
  pthread_attr_destroy(&a);
  r->lo = (uintptr_t)addr;
  r->hi = (uintptr_t)addr + size;
  r->size = size;
  r->guard = guard;
  r->sp = (uintptr_t)&here;
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int __attribute__((noinline)) recurse(int depth) {
  volatile char frame[256];
  frame[0] = (char)depth;
  frame[255] = (char)depth;
  return recurse(depth + 1) + frame[0] + frame[255];
}

static void* body(void* arg) {
  (void)arg;
  look(&g_rep);
  switch (g_mode) {
    case kTouchGuardLow:
      *(volatile char*)(g_rep.lo - g_rep.guard) = 1;
      break;
    case kTouchGuardHigh:
      *(volatile char*)(g_rep.lo - 1) = 1;
      break;
    case kRecurse:
      recurse(0);
      break;
    case kWaitFlag:
      while (!g_flag) sched_yield();
      look(&g_rep);
      break;
  }
  return NULL;
}

static int run_thread(size_t stack, size_t guard, int mode) {
  pthread_attr_t a;
  pthread_t t;
  pthread_attr_init(&a);
  if (stack) pthread_attr_setstacksize(&a, stack);
  if (guard != (size_t)-1) pthread_attr_setguardsize(&a, guard);
  g_mode = mode;
  int e = pthread_create(&t, &a, body, NULL);
  pthread_attr_destroy(&a);
  if (e) return e;
  return pthread_join(t, NULL);
}

/* reuse: a thread of the same attributes runs and ends first, so that the
 * second gets its cached stack. */
static const char* child_end(size_t stack, size_t guard, int mode, int reuse) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    if (reuse) run_thread(stack, guard, kLook);
    run_thread(stack, guard, mode);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) return "waitpid failed";
  if (WIFSIGNALED(st)) return WTERMSIG(st) == SIGSEGV ? "killed by SIGSEGV" : "killed by another signal";
  return "exited";
}

static const char* yesno(int c) { return c ? "yes" : "no"; }

static void sized(const char* name, size_t stack, size_t guard, int exact) {
  int e = run_thread(stack, guard, kLook);
  printf("%s: created: %s\n", name, yesno(e == 0));
  printf("%s: getattr_np works: %s\n", name, yesno(g_rep.ok));
  printf("%s: sp inside reported stack: %s\n", name, yesno(g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi));
  printf("%s: reported size >= requested: %s\n", name, yesno(g_rep.size >= stack));
  if (exact) {
    /* The program's first thread gets a fresh stack natively (glibc's
     * cache may hand later ones a bigger block): exactly the requested
     * size, TLS and the thread descriptor taken out of it, so a frame that
     * far below the first one is in the guard. */
    printf("%s: reported size == requested: %s\n", name, yesno(g_rep.size == stack));
    printf("%s: first frame at most the requested size above the guard: %s\n", name,
           yesno(g_rep.sp - g_rep.lo <= stack && g_rep.sp - g_rep.lo >= stack / 2));
  }
  printf("%s: reported guard == requested: %s\n", name, yesno(g_rep.guard == guard));
  if (guard) {
    printf("%s: write to lowest guard byte: %s\n", name, child_end(stack, guard, kTouchGuardLow, 0));
    printf("%s: write to highest guard byte: %s\n", name, child_end(stack, guard, kTouchGuardHigh, 0));
    printf("%s: runaway recursion: %s\n", name, child_end(stack, guard, kRecurse, 0));
  }
}

static void reused(void) {
  const size_t sz = 768 * 1024;
  int e1 = run_thread(sz, PAGE, kLook);
  uintptr_t lo1 = g_rep.lo;
  int e2 = run_thread(sz, PAGE, kLook);
  printf("same size again: same stack: %s\n", yesno(e1 == 0 && e2 == 0 && g_rep.lo == lo1));
  printf("same size again: sp inside: %s\n", yesno(g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi));
  int all = 1;
  for (int i = 0; i < 6; i++) {
    size_t stack = i % 3 == 2 ? 512 * 1024 : 256 * 1024;
    size_t guard = (size_t)(1 + i % 2) * PAGE;
    int e = run_thread(stack, guard, kLook);
    all &= e == 0 && g_rep.ok && g_rep.guard == guard && g_rep.size >= stack && g_rep.size <= 4 * stack &&
           g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi;
  }
  printf("sizes and guards alternated: each reports its own: %s\n", yesno(all));
  printf("reused stack: write to lowest guard byte: %s\n", child_end(sz, 2 * PAGE, kTouchGuardLow, 1));
  printf("reused stack: runaway recursion: %s\n", child_end(sz, PAGE, kRecurse, 1));
}

int main(void) {
  mnp_report_shim();
  sized("min stack, 1-page guard", PTHREAD_STACK_MIN, PAGE, 1);
  sized("64 KiB, 1-page guard", 64 * 1024, PAGE, 0);
  sized("1 MiB, 1-page guard", 1024 * 1024, PAGE, 0);
  sized("64 KiB, 3-page guard", 64 * 1024, 3 * PAGE, 0);
  sized("min stack, 3-page guard", PTHREAD_STACK_MIN, 3 * PAGE, 0);
  sized("64 KiB, no guard", 64 * 1024, 0, 0);
  reused();

  /* The program's own stack: reported exactly, no guard. */
  {
    size_t sz = 256 * 1024;
    void* mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setstack(&a, mem, sz);
    g_mode = kLook;
    int e = pthread_create(&t, &a, body, NULL);
    pthread_attr_destroy(&a);
    if (!e) pthread_join(t, NULL);
    printf("setstack: created: %s\n", yesno(e == 0));
    printf("setstack: reported stack is the program's block: %s\n",
           yesno(g_rep.ok && g_rep.lo == (uintptr_t)mem && g_rep.size == sz));
    printf("setstack: reported guard 0: %s\n", yesno(g_rep.guard == 0));
    printf("setstack: sp inside: %s\n", yesno(g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi));
  }

  /* The attribute changed after pthread_create: the thread's own stack is
   * what it reports. */
  {
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    pthread_attr_setguardsize(&a, 2 * PAGE);
    g_mode = kWaitFlag;
    g_flag = 0;
    int e = pthread_create(&t, &a, body, NULL);
    pthread_attr_setstacksize(&a, 4 * 1024 * 1024);
    pthread_attr_setguardsize(&a, 8 * PAGE);
    g_flag = 1;
    if (!e) pthread_join(t, NULL);
    pthread_attr_destroy(&a);
    printf("attr changed later: size unchanged: %s\n", yesno(g_rep.size >= 128 * 1024 && g_rep.size < 4 * 1024 * 1024));
    printf("attr changed later: guard unchanged: %s\n", yesno(g_rep.guard == 2 * PAGE));
    printf("attr changed later: sp inside: %s\n", yesno(g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi));
  }

  /* The main thread. */
  look(&g_rep);
  printf("main: getattr_np works: %s\n", yesno(g_rep.ok));
  printf("main: sp inside reported stack: %s\n", yesno(g_rep.sp >= g_rep.lo && g_rep.sp < g_rep.hi));
  return 0;
}
