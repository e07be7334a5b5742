// interpose/rwlock.cpp — rwlocks, barriers and spinlocks that never block
// the M.
//
// rwlock (inside pthread_rwlock_t, keeping glibc's __cur_writer, __shared and
// __flags offsets): a small internal lock word guards the reader count, the
// writer and the waiter counts; readers sleep on rseq and writers on wseq in
// the sema table. Reader-preferring by default (glibc's default);
// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP makes new readers wait while
// a writer waits. EDEADLK when the writing thread asks again, as glibc
// (EBUSY from tryrdlock and trywrlock, which in glibc never check the owner).
//
// barrier: the last arrival of a generation bumps `gen` and wakes the rest;
// exactly one caller per generation gets PTHREAD_BARRIER_SERIAL_THREAD.
//
// spinlock: spins, then yields the G so that a holder that was descheduled
// (it may share our M) gets to run and release it.
// Process-shared objects keep glibc's implementation, blocking via hand-off.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>

#include "core/sched.h"
#include "core/sema.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

// Internal lock of rwlock and barrier (core/sema.h's word lock): held for a
// few loads and stores, so it spins a little before it waits.
// No spin at 1 P, where the holder cannot run meanwhile.
constexpr int64_t kIlockSpinNs = 1000;
void ilock(std::atomic<uint32_t>* w) {
  if (!word_trylock(w)) word_lock_slow(w, sched.nprocs < 2 ? 0 : kIlockSpinNs, kNever, kWaitRwlock);
}
void iunlock(std::atomic<uint32_t>* w) { word_unlock(w); }

// ---- rwlock -------------------------------------------------------------------

struct RwView {
  std::atomic<uint32_t> lock;  // 0
  uint32_t readers;            // 4
  std::atomic<uint32_t> rseq;  // 8
  std::atomic<uint32_t> wseq;  // 12
  uint32_t rwait;              // 16
  uint32_t wwait;              // 20
  int cur_writer;              // 24: glibc's __cur_writer
  int shared;                  // 28: glibc's __shared
  uint64_t pad[2];             // 32
  uint32_t flags;              // 48: glibc's __flags
  uint32_t pad2;
};
static_assert(sizeof(RwView) == sizeof(pthread_rwlock_t));
static_assert(offsetof(RwView, flags) == 48);

RwView* rw(pthread_rwlock_t* l) { return reinterpret_cast<RwView*>(l); }
bool prefer_writer(RwView* l) { return l->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP; }

int rdlock(pthread_rwlock_t* lk, int64_t deadline, bool try_only) {
  RwView* l = rw(lk);
  int me = current_tid();
  ilock(&l->lock);
  if (l->cur_writer == me) {
    iunlock(&l->lock);
    return try_only ? EBUSY : EDEADLK;  // glibc's try forms never look at the owner
  }
  for (;;) {
    if (l->cur_writer == 0 && !(prefer_writer(l) && l->wwait > 0)) {
      if (l->readers == UINT_MAX) {
        iunlock(&l->lock);
        return EAGAIN;
      }
      l->readers++;
      iunlock(&l->lock);
      return 0;
    }
    if (try_only) {
      iunlock(&l->lock);
      return EBUSY;
    }
    l->rwait++;
    uint32_t s = l->rseq.load(std::memory_order_relaxed);
    iunlock(&l->lock);
    int r = sema_wait(&l->rseq, s, deadline, kBitsetAny, {.reason = kWaitRwlock});
    ilock(&l->lock);
    l->rwait--;
    if (r == ETIMEDOUT && !(l->cur_writer == 0 && !(prefer_writer(l) && l->wwait > 0))) {
      iunlock(&l->lock);
      return ETIMEDOUT;
    }
  }
}

int wrlock(pthread_rwlock_t* lk, int64_t deadline, bool try_only) {
  RwView* l = rw(lk);
  int me = current_tid();
  ilock(&l->lock);
  if (l->cur_writer == me) {
    iunlock(&l->lock);
    return try_only ? EBUSY : EDEADLK;  // glibc's try forms never look at the owner
  }
  for (;;) {
    if (l->cur_writer == 0 && l->readers == 0) {
      l->cur_writer = me;
      iunlock(&l->lock);
      return 0;
    }
    if (try_only) {
      iunlock(&l->lock);
      return EBUSY;
    }
    l->wwait++;
    uint32_t s = l->wseq.load(std::memory_order_relaxed);
    iunlock(&l->lock);
    int r = sema_wait(&l->wseq, s, deadline, kBitsetAny, {.reason = kWaitRwlock});
    ilock(&l->lock);
    l->wwait--;
    if (r == ETIMEDOUT && !(l->cur_writer == 0 && l->readers == 0)) {
      // Readers held back for us (writer preference) may go now.
      bool wake_readers = l->wwait == 0 && l->rwait > 0 && l->cur_writer == 0;
      if (wake_readers) l->rseq.fetch_add(1, std::memory_order_relaxed);
      iunlock(&l->lock);
      if (wake_readers) sema_wake(&l->rseq, INT_MAX);
      return ETIMEDOUT;
    }
  }
}

int rwunlock(pthread_rwlock_t* lk) {
  RwView* l = rw(lk);
  ilock(&l->lock);
  if (l->cur_writer != 0) {
    l->cur_writer = 0;
  } else if (l->readers > 0) {
    l->readers--;
  } else {
    iunlock(&l->lock);
    return 0;  // not locked: glibc does not diagnose it either
  }
  bool wake_writer = false, wake_readers = false;
  if (l->cur_writer == 0 && l->readers == 0) {
    if (l->wwait > 0) {
      wake_writer = true;
      l->wseq.fetch_add(1, std::memory_order_relaxed);
    }
    if (l->rwait > 0 && !(prefer_writer(l) && l->wwait > 0)) {
      wake_readers = true;
      l->rseq.fetch_add(1, std::memory_order_relaxed);
    }
  }
  iunlock(&l->lock);
  if (wake_writer) sema_wake(&l->wseq, 1);
  if (wake_readers) sema_wake(&l->rseq, INT_MAX);
  return 0;
}

// ---- barrier ------------------------------------------------------------------

struct BarrierView {
  std::atomic<uint32_t> lock;  // 0
  std::atomic<uint32_t> gen;   // 4
  uint32_t count;              // 8
  int shared;                  // 12: glibc's `shared`
  uint32_t arrived;            // 16
  uint32_t pad[3];
};
static_assert(sizeof(BarrierView) == sizeof(pthread_barrier_t));
BarrierView* bar(pthread_barrier_t* b) { return reinterpret_cast<BarrierView*>(b); }

}  // namespace

extern "C" {

MNP_EXPORT int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t* attr) noexcept {
  int ps = PTHREAD_PROCESS_PRIVATE, kind = PTHREAD_RWLOCK_DEFAULT_NP;
  if (attr) {
    pthread_rwlockattr_getpshared(attr, &ps);
    pthread_rwlockattr_getkind_np(attr, &kind);
  }
  if (ps == PTHREAD_PROCESS_SHARED) return real_pthread_rwlock_init(l, attr);
  __builtin_memset(static_cast<void*>(l), 0, sizeof *l);
  rw(l)->flags = static_cast<uint32_t>(kind);
  return 0;
}
MNP_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? real_pthread_rwlock_destroy(l) : 0;
}
MNP_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? handoff(real_pthread_rwlock_rdlock, l) : rdlock(l, kNever, false);
}
MNP_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? real_pthread_rwlock_tryrdlock(l) : rdlock(l, kNever, true);
}
MNP_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t c, const struct timespec* t) noexcept {
  if (rw(l)->shared) return handoff(real_pthread_rwlock_clockrdlock, l, c, t);
  // glibc checks the clock and the time first, even when the lock is free.
  if (!supported_clock(c) || !valid_timespec(t)) return EINVAL;
  return rdlock(l, abs_deadline(c, t), false);
}
MNP_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const struct timespec* t) noexcept {
  if (rw(l)->shared) return handoff(real_pthread_rwlock_timedrdlock, l, t);
  return pthread_rwlock_clockrdlock(l, CLOCK_REALTIME, t);
}
MNP_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? handoff(real_pthread_rwlock_wrlock, l) : wrlock(l, kNever, false);
}
MNP_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? real_pthread_rwlock_trywrlock(l) : wrlock(l, kNever, true);
}
MNP_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t c, const struct timespec* t) noexcept {
  if (rw(l)->shared) return handoff(real_pthread_rwlock_clockwrlock, l, c, t);
  if (!supported_clock(c) || !valid_timespec(t)) return EINVAL;
  return wrlock(l, abs_deadline(c, t), false);
}
MNP_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const struct timespec* t) noexcept {
  if (rw(l)->shared) return handoff(real_pthread_rwlock_timedwrlock, l, t);
  return pthread_rwlock_clockwrlock(l, CLOCK_REALTIME, t);
}
MNP_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t* l) noexcept {
  return rw(l)->shared ? real_pthread_rwlock_unlock(l) : rwunlock(l);
}

MNP_EXPORT int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) noexcept {
  int ps = PTHREAD_PROCESS_PRIVATE;
  if (attr) pthread_barrierattr_getpshared(attr, &ps);
  if (ps == PTHREAD_PROCESS_SHARED) return real_pthread_barrier_init(b, attr, count);
  if (count == 0 || count >= UINT_MAX / 2) return EINVAL;  // glibc's bound
  __builtin_memset(static_cast<void*>(b), 0, sizeof *b);
  bar(b)->count = count;
  return 0;
}
MNP_EXPORT int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
  return bar(b)->shared ? real_pthread_barrier_destroy(b) : 0;
}
MNP_EXPORT int pthread_barrier_wait(pthread_barrier_t* b) noexcept {
  BarrierView* v = bar(b);
  if (v->shared) return handoff(real_pthread_barrier_wait, b);
  ilock(&v->lock);
  if (++v->arrived == v->count) {
    v->arrived = 0;
    v->gen.fetch_add(1, std::memory_order_release);
    iunlock(&v->lock);
    sema_wake(&v->gen, INT_MAX);
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  uint32_t g = v->gen.load(std::memory_order_relaxed);
  iunlock(&v->lock);
  while (v->gen.load(std::memory_order_acquire) == g)
    sema_wait(&v->gen, g, kNever, kBitsetAny, {.reason = kWaitBarrier});
  return 0;
}

MNP_EXPORT int pthread_spin_init(pthread_spinlock_t* l, int) noexcept {
  __atomic_store_n(l, 0, __ATOMIC_RELAXED);
  return 0;
}
MNP_EXPORT int pthread_spin_destroy(pthread_spinlock_t*) noexcept { return 0; }
MNP_EXPORT int pthread_spin_trylock(pthread_spinlock_t* l) noexcept {
  int z = 0;
  return __atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED) ? 0 : EBUSY;
}
MNP_EXPORT int pthread_spin_lock(pthread_spinlock_t* l) noexcept {
  for (;;) {
    for (int i = 0; i < 100; i++) {
      int z = 0;
      if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
          __atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
      cpu_relax();
    }
    // The holder may be a G waiting for our M: let it run.
    if (get_user_g()) yield();
    else raw_syscall(SYS_sched_yield);
  }
}
MNP_EXPORT int pthread_spin_unlock(pthread_spinlock_t* l) noexcept {
  __atomic_store_n(l, 0, __ATOMIC_RELEASE);
  return 0;
}

}  // extern "C"
