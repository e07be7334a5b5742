// core/sema.h — the address-keyed wait table every blocking primitive parks
// on (after Go's semtable): a user-space futex for Gs.
//
// sema_wait(addr, val) parks the calling G while *addr == val; sema_wake(addr,
// n) makes up to n of them runnable. The compare and the enqueue happen under
// the bucket lock, and a waker changes *addr before calling sema_wake (which
// takes the same lock), so a wake-up cannot be lost: exactly the futex
// contract, which is why mutex, condvar, rwlock, barrier, semaphore, once and
// the interposed SYS_futex all sit on it unchanged.
//
// Waiter records live on the waiting G's stack, linked into one of 251
// buckets chosen by address; nothing is allocated. A waiter that is not a G
// (a thread mnpthread did not create, or code before the runtime is up)
// sleeps in the kernel futex on the same word instead; the bucket counts
// such sleepers so that wakers issue FUTEX_WAKE only when one exists.
//
// The bucket lock is not held across the park: whoever ends a wait claims
// the waiter, and the park commit fails if that came first (sema.cpp,
// kArming).
//
// State of a waiter (changed only under its bucket lock): kWaiting ->
// kWoken (by sema_wake), kTimedOut (by its timer), kCanceled
// (pthread_cancel), kSignaled (to run a handler of the program's on this
// G, core/sigpend.h) or kInterrupted (a handler that ran on another G ends
// this wait, as the kernel would have ended it on this thread).
//
// Signals, as the kernel treats a futex wait. A G woken kSignaled runs the
// pending handlers on its way out of park(); then an `interruptible` wait
// (a semaphore, syscall(SYS_futex)) ends with EINTR when the G is the one
// the kernel would have given the signal to and a handler ran that the
// kernel ends such a wait for: a timed wait for any handler (the kernel's
// -ERESTART_RESTARTBLOCK), an untimed one only for a handler without
// SA_RESTART (-ERESTARTSYS). Otherwise the wait is restarted: compared and
// enqueued again with the same deadline, so it may now return EAGAIN, as a
// restarted futex call does. Other waits (mutex, condvar, rwlock, barrier,
// once) always restart, as glibc's loops around the futex do.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/timer.h"
#include "core/waitreason.h"

namespace mnp {

constexpr uint32_t kBitsetAny = 0xffffffffu;

// 0 when woken, EAGAIN when *addr != val on entry, ETIMEDOUT when deadline
// (CLOCK_MONOTONIC ns; kNever = no limit) passed first. Spurious returns of 0
// are possible only through a kernel-futex wait (non-G callers), as with
// futex(2); callers re-check their condition. A `cancelable` wait of a G
// (a POSIX cancellation point: condvar, semaphore) also ends with ECANCELED
// when pthread_cancel asks (core/cancel.h); the caller restores its own
// state and then calls cancel_point(). An `interruptible` wait also ends
// with EINTR (see above).
//
// A `watch`ed wait (a G in the futex interposer's FUTEX_WAIT) also ends, as
// a spurious wake-up (0), when *addr no longer holds val at one of sysmon's
// looks (sema_watch_scan): the way a FUTEX_WAKE that a thread the runtime
// did not create made in the kernel reaches a G.
struct SemaWait {
  WaitReason reason = kWaitSema;  // what a G dump shows for the wait
  bool cancelable = false;
  bool interruptible = false;
  bool watch = false;
};
int sema_wait(const std::atomic<uint32_t>* addr, uint32_t val, int64_t deadline, uint32_t bitset = kBitsetAny,
              SemaWait how = {});
// sysmon: wakes every watched waiter whose word changed; sema_watching says
// whether any exists.
void sema_watch_scan();
bool sema_watching();
// Wakes up to n waiters on addr whose bitset intersects; returns how many.
int sema_wake(const void* addr, int n, uint32_t bitset = kBitsetAny);
// Wakes up to nwake waiters on from and moves up to nmove of the rest to wait
// on to. With cmp, fails with -EAGAIN unless *from == *cmp. Returns woken +
// moved (or woken only, when count_moved is false: FUTEX_REQUEUE's result).
int sema_requeue(const std::atomic<uint32_t>* from, const void* to, int nwake, int nmove, const uint32_t* cmp,
                 bool count_moved);
// For a handler of the program's that waits for a G (core/sigpend.h): wakes
// `only` (when null, any G whose mask lets sig through) if it waits here,
// kSignaled. may_interrupt: the G is the one the kernel would have chosen
// (its wait may end with EINTR; G::sig_eintr is set, so the handler's run
// does not count the signal again). Returns false if it found none.
struct G;
bool sema_wake_for_signal(G* only, int sig, bool may_interrupt);
// A handler for sig (SA_RESTART: restart) ran on another G for a signal
// that natively would have gone to `only` (any G that lets it through when
// null): ends that G's interruptible wait with EINTR if the kernel would
// have ended it. Returns false if no wait qualified.
bool sema_interrupt(G* only, int sig, bool restart);
// Number of G waiters currently waiting on addr, parked or on their way
// into park (tests, dumps).
int sema_count(const void* addr);
// In a child of fork: no waiter survived; locks may have been held.
void sema_after_fork();

// The lock word of a lock that Gs wait for (pthread mutexes, the internal
// lock of rwlocks and barriers): 0 free, 1 locked, 2 locked with possible
// waiters, who wait through this table on the word (a G parks, another
// thread sleeps in the kernel futex), so a contended lock never blocks an
// M. Lock (core/futex.h) has the same word but blocks the M: it is for
// runtime state taken where no G can park (g0, sysmon, the buckets of this
// very table). The users differ only in how long they spin before they
// wait and in a deadline, both explicit here.
inline bool word_trylock(std::atomic<uint32_t>* w) {
  uint32_t c = 0;
  return w->compare_exchange_strong(c, 1, std::memory_order_acquire);
}
// After a failed word_trylock: spins for about spin_ns (0: not at all),
// looking at the word ever less often (sema.cpp), then waits until the lock
// is taken (0) or deadline (CLOCK_MONOTONIC ns, kNever: none) passes
// (ETIMEDOUT).
int word_lock_slow(std::atomic<uint32_t>* w, int64_t spin_ns, int64_t deadline, WaitReason reason = kWaitMutex);
inline void word_unlock(std::atomic<uint32_t>* w) {
  if (w->exchange(0, std::memory_order_release) == 2) sema_wake(w, 1);
}

}  // namespace mnp
