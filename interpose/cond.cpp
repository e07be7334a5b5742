// interpose/cond.cpp — condition variables that park the G.
//
// Protocol (inside the program's pthread_cond_t):
//   seq      bumped by every signal/broadcast that finds waiters; waiters
//            sleep in the sema table while it still has the value they saw
//   waiters  number of threads between "about to wait" and "woke up"
//   flags    at glibc's __wrefs offset: bit 0 process-shared, bit 1
//            CLOCK_MONOTONIC (the layout glibc's own initialiser uses)
// A waiter reads seq and counts itself while it still holds the mutex, so
// a signaller that changes the predicate under the mutex either runs before
// (the waiter then sees the predicate) or after (it sees waiters > 0, bumps
// seq, and the waiter's sema_wait returns at once or is woken): no lost
// wake-up. Gs and threads that are not Gs can wait on the same condvar (the
// sema table sends the latter to the kernel futex on seq).
// Process-shared condvars keep glibc's implementation, blocking via hand-off.
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include "core/cancel.h"
#include "core/sched.h"
#include "core/sema.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

struct CondView {
  std::atomic<uint32_t> seq;
  std::atomic<uint32_t> waiters;
  uint32_t unused[7];
  std::atomic<uint32_t> flags;  // offset 36 = glibc's __wrefs
  uint32_t unused2[2];
};
static_assert(sizeof(CondView) == sizeof(pthread_cond_t));
static_assert(offsetof(CondView, flags) == 36);
constexpr uint32_t kCondPshared = 1, kCondMonotonic = 2;

CondView* view(pthread_cond_t* c) { return reinterpret_cast<CondView*>(c); }
bool pshared(pthread_cond_t* c) { return view(c)->flags.load(std::memory_order_relaxed) & kCondPshared; }

// The waiter stays a user of the mutex while it waits (see nusers, sync.h).
int lock_any(pthread_mutex_t* m) {
  return mutex_is_pshared(m) ? handoff(real_pthread_mutex_lock, m) : mutex_lock_impl(m, kNever, false, nullptr, false);
}
int unlock_any(pthread_mutex_t* m) {
  return mutex_is_pshared(m) ? real_pthread_mutex_unlock(m) : mutex_unlock_impl(m, false);
}

// Cancellation (a condvar wait is a cancellation point): a due request is
// acted on at entry, or ends the sleep with ECANCELED; either way the mutex
// is held again before the cleanup handlers run, as POSIX says. A waiter
// that was woken by a signal and is canceled before it returns passes the
// signal on, so that no other waiter misses it.
void cond_wake(pthread_cond_t* cv, int n);

int cond_wait(pthread_cond_t* cv, pthread_mutex_t* m, int64_t deadline) {
  cancel_point();
  CondView* c = view(cv);
  uint32_t s = c->seq.load(std::memory_order_acquire);
  c->waiters.fetch_add(1, std::memory_order_seq_cst);
  if (int r = unlock_any(m)) {
    c->waiters.fetch_sub(1, std::memory_order_relaxed);
    return r;  // EPERM: the caller does not hold an error-checking mutex
  }
  int w = sema_wait(&c->seq, s, deadline, kBitsetAny, {.reason = kWaitCond, .cancelable = true});
  c->waiters.fetch_sub(1, std::memory_order_relaxed);
  int r = lock_any(m);
  if (G* g = get_user_g(); g && cancel_due(cancelhandling(g).load(std::memory_order_acquire))) {
    if (w == 0) cond_wake(cv, 1);
    cancel_point();
  }
  if (r) return r;  // EOWNERDEAD / ENOTRECOVERABLE of a robust mutex
  return w == ETIMEDOUT ? ETIMEDOUT : 0;
}

void cond_wake(pthread_cond_t* cv, int n) {
  CondView* c = view(cv);
  if (c->waiters.load(std::memory_order_seq_cst) == 0) return;
  c->seq.fetch_add(1, std::memory_order_release);
  // A G woken here that may take the P (kPreemptWake) waits for the
  // mutex's unlock, usually held now: switching at once would have it
  // find the mutex taken and wait again.
  sema_wake(&c->seq, n);
}

}  // namespace

extern "C" {

MNP_EXPORT int pthread_cond_init(pthread_cond_t* cv, const pthread_condattr_t* attr) noexcept {
  int ps = PTHREAD_PROCESS_PRIVATE;
  clockid_t clk = CLOCK_REALTIME;
  if (attr) {
    pthread_condattr_getpshared(attr, &ps);
    pthread_condattr_getclock(attr, &clk);
  }
  if (ps == PTHREAD_PROCESS_SHARED) return real_pthread_cond_init(cv, attr);
  __builtin_memset(static_cast<void*>(cv), 0, sizeof *cv);
  view(cv)->flags.store(clk == CLOCK_MONOTONIC ? kCondMonotonic : 0, std::memory_order_relaxed);
  return 0;
}

MNP_EXPORT int pthread_cond_destroy(pthread_cond_t* cv) noexcept {
  if (pshared(cv)) return real_pthread_cond_destroy(cv);
  return 0;
}

MNP_EXPORT int pthread_cond_signal(pthread_cond_t* cv) noexcept {
  if (pshared(cv)) return real_pthread_cond_signal(cv);
  cond_wake(cv, 1);
  return 0;
}

MNP_EXPORT int pthread_cond_broadcast(pthread_cond_t* cv) noexcept {
  if (pshared(cv)) return real_pthread_cond_broadcast(cv);
  cond_wake(cv, INT_MAX);
  return 0;
}

MNP_EXPORT int pthread_cond_wait(pthread_cond_t* cv, pthread_mutex_t* m) {
  if (pshared(cv)) return handoff(real_pthread_cond_wait, cv, m);
  return cond_wait(cv, m, kNever);
}

MNP_EXPORT int pthread_cond_clockwait(pthread_cond_t* cv, pthread_mutex_t* m, clockid_t clk,
                                      const struct timespec* abstime) {
  if (pshared(cv)) return handoff(real_pthread_cond_clockwait, cv, m, clk, abstime);
  if (!supported_clock(clk) || !valid_timespec(abstime)) return EINVAL;
  return cond_wait(cv, m, abs_deadline(clk, abstime));
}

MNP_EXPORT int pthread_cond_timedwait(pthread_cond_t* cv, pthread_mutex_t* m, const struct timespec* abstime) {
  if (pshared(cv)) return handoff(real_pthread_cond_timedwait, cv, m, abstime);
  clockid_t clk = (view(cv)->flags.load(std::memory_order_relaxed) & kCondMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
  if (!valid_timespec(abstime)) return EINVAL;
  return cond_wait(cv, m, abs_deadline(clk, abstime));
}

}  // extern "C"
