// core/futex.h — raw private futex calls and the two kernel-blocking
// primitives built on them: Lock (a three-state mutex for runtime-internal
// state held for short, bounded sections) and Note (a one-shot wake-up an M
// sleeps on when it has nothing to run).
//
// These block the kernel thread. They are for Ms (scheduler code) and for
// callers that are not Gs; G code waits with park() instead.
#pragma once

#include <linux/futex.h>

#include <atomic>

#include "core/base.h"

namespace mnp {

// Returns 0, or -errno (EAGAIN when *addr != val, ETIMEDOUT, EINTR).
inline long futex_wait(std::atomic<uint32_t>* addr, uint32_t val, const struct timespec* rel = nullptr) {
  return raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAIT_PRIVATE, val, reinterpret_cast<long>(rel), 0,
                      0);
}
inline long futex_wake(std::atomic<uint32_t>* addr, int n) {
  return raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
}

// Lock word: 0 unlocked, 1 locked, 2 locked with (possible) sleepers.
//
// The same word as the G-aware word lock of core/sema.h (word_trylock,
// word_lock_slow: pthread mutexes, the rwlock's internal lock), which makes
// a waiting G park. Lock cannot: it guards the scheduler and the sema table
// themselves, and is taken on g0, on sysmon, inside park's commit and by
// the sema table's buckets, where there is no G to park or parking would
// need the very lock. So its waiters sleep in the kernel futex, its holder
// counts it in M::locks (below), and it spins 100 pauses before it sleeps,
// since a sleep here costs a whole M.
//
// The rule for holding one (lock ordering with the scheduler): a G holds a
// Lock only while it keeps its M and its P. Nothing between lock() and
// unlock() may queue the G, switch away from it or take a P back for it
// (ensure_p, exitsyscall): a waiter on the Lock sleeps in the kernel with
// its P, so a holder queued as runnable can wait for a P that never comes.
// Hence a P is re-acquired before any wait-structure lock is taken (sema
// buckets, netpoll fd states, the join word), and the one switch made with
// a lock held — park(), whose commit callback releases it on the same M —
// never queues the G first (sched.h).
//
// The M counts the Locks it holds (m_lock_enter/m_lock_exit, sched.cpp):
// while it holds one, a handler of the program's that the kernel runs on
// this thread is held back (interpose/signal.cpp) and raised again when the
// count drops to 0. Otherwise a handler that posts a semaphore, say,
// interrupting this thread inside sema_wait would wait for the bucket lock
// the interrupted code holds, on the same thread: forever. The count goes
// up before the lock word is taken and down after it is released.
void m_lock_enter();
void m_lock_exit();

class Lock {
 public:
  constexpr Lock() = default;
  // In a fork child: frees the lock if a thread of the parent's, which
  // does not exist here, held it. Writes nothing when it is free: most fork
  // children exec next, and a write is a copy-on-write fault.
  void reset_in_child() {
    if (word_.load(std::memory_order_relaxed) != 0) word_.store(0, std::memory_order_relaxed);
  }
  void lock() {
    m_lock_enter();
    uint32_t c = 0;
    if (MNP_LIKELY(word_.compare_exchange_strong(c, 1, std::memory_order_acquire))) return;
    lock_slow();
  }
  bool try_lock() {
    m_lock_enter();
    uint32_t c = 0;
    if (word_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return true;
    m_lock_exit();
    return false;
  }
  void unlock() {
    if (MNP_UNLIKELY(word_.exchange(0, std::memory_order_release) == 2)) futex_wake(&word_, 1);
    m_lock_exit();
  }

 private:
  void lock_slow();
  std::atomic<uint32_t> word_{0};
};

class LockGuard {
 public:
  explicit LockGuard(Lock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& l_;
};

// One sleeper, one waker. clear() before reuse; wakeup() at most once per clear.
class Note {
 public:
  void clear() { key_.store(0, std::memory_order_relaxed); }
  void wakeup() {
    if (key_.exchange(1, std::memory_order_release) != 0) fatal("Note::wakeup: double wakeup");
    futex_wake(&key_, 1);
  }
  void sleep() {
    while (key_.load(std::memory_order_acquire) == 0) futex_wait(&key_, 0);
  }
  // Sleeps at most ns nanoseconds; returns true if woken.
  bool sleep_for(int64_t ns);
  bool is_set() const { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<uint32_t> key_{0};
};

}  // namespace mnp
