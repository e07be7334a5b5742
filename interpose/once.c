/* interpose/once.c — pthread_once that parks concurrent callers.
 *
 * Written in C and built with -fexceptions (the rest of the shim is C++
 * without exceptions) so that the cleanup attribute below runs whenever the
 * init routine is left by unwinding: a C++ exception (std::call_once must let
 * the next caller retry) or thread cancellation. Either resets the control
 * word to "not run" and wakes the waiters, one of which then runs it. The
 * unwinder's functions this needs are found when an unwind first reaches
 * this frame (interpose/unwind_link.cpp), so the shim does not load
 * libgcc_s.
 *
 * Control word: 0 not run, bit 0 running, bit 1 done, bit 2 someone waits.
 * glibc's PTHREAD_ONCE_INIT is 0, and glibc's own DONE value is also 2, so a
 * once_control completed by glibc (before the shim was up) reads as done.
 */
#include <pthread.h>
#include <stdint.h>

#include "core/sema_c.h"

#define MNP_EXPORT __attribute__((visibility("default")))

enum { kRunning = 1, kDone = 2, kWaiters = 4 };

struct once_guard {
  int* ctl;
  int finished;
};

static void once_unwind(struct once_guard* g) {
  if (g->finished) return;
  /* The init routine did not return: let another caller run it. */
  int old = __atomic_exchange_n(g->ctl, 0, __ATOMIC_ACQ_REL);
  if (old & kWaiters) mnp_sema_wake_all(g->ctl);
}

MNP_EXPORT int pthread_once(pthread_once_t* once, void (*init)(void)) {
  int* ctl = (int*)once;
  for (;;) {
    int v = __atomic_load_n(ctl, __ATOMIC_ACQUIRE);
    if (v & kDone) return 0;
    if (v == 0) {
      if (!__atomic_compare_exchange_n(ctl, &v, kRunning, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) continue;
      {
        struct once_guard g __attribute__((cleanup(once_unwind))) = {ctl, 0};
        init();
        g.finished = 1;
      }
      int old = __atomic_exchange_n(ctl, kDone, __ATOMIC_ACQ_REL);
      if (old & kWaiters) mnp_sema_wake_all(ctl);
      return 0;
    }
    /* Running elsewhere: announce ourselves and sleep until it changes. */
    if (!(v & kWaiters) && !__atomic_compare_exchange_n(ctl, &v, v | kWaiters, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      continue;
    mnp_sema_wait32(ctl, (uint32_t)(v | kWaiters));
  }
}
