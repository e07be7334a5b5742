// interpose/sync.h — shared pieces of the synchronisation interposers.
#pragma once

#include <pthread.h>
#include <time.h>

#include <cerrno>
#include <atomic>
#include <cstdint>

#include "core/sched.h"
#include "core/tcb.h"
#include "core/timer.h"
// Process-shared objects keep glibc's implementation, which may block in
// the kernel: their interposers call it through handoff.
#include "interpose/blocking.h"

namespace mnp {

// glibc's struct __pthread_mutex_s, which is the storage we keep our state in.
//   lock   0 free, 1 locked, 2 locked and (maybe) waiters — the futex word
//   count  recursion depth (recursive kinds; 1 when held)
//   owner  tid (TCB tid: a G's fake tid) of the holder; for robust mutexes
//          also kOwnerDied / kInconsistent / kNotRecoverable
//   nusers users, as glibc counts them: +1 per lock, -1 per unlock (the
//          outermost for recursive kinds), kept across a condvar wait;
//          pthread_mutex_destroy's EBUSY
//   kind   glibc's type and flags; bits 24..31 hold our PRIO_PROTECT ceiling
//   list   links of the holder G's robust list (robust kinds)
struct MutexView {
  std::atomic<uint32_t> lock;
  uint32_t count;
  std::atomic<int> owner;
  uint32_t nusers;
  std::atomic<int> kind;
  int holder;  // robust kinds: tid of the holder (owner may be a marker)
  MutexView* prev;
  MutexView* next;
};
static_assert(sizeof(MutexView) == sizeof(pthread_mutex_t));

constexpr int kMutexKindMask = 3;
constexpr int kMutexRobust = 16;
constexpr int kMutexPrioInherit = 32;
constexpr int kMutexPrioProtect = 64;
constexpr int kMutexPshared = 128;
constexpr int kMutexCeilingShift = 24;

// struct pthread::tid of this G / thread.
inline int current_tid() { return arch_tcb_load_int<tcbo::kTid>(); }

// Monotonic deadline for an absolute time on clock clk (REALTIME/MONOTONIC).
int64_t abs_deadline(clockid_t clk, const struct timespec* abstime);
inline bool valid_timespec(const struct timespec* ts) { return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000; }
inline bool supported_clock(clockid_t c) { return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC; }

// Mutex operations used by the condition variable as well. deadline: kNever
// or monotonic ns; try_only: EBUSY instead of waiting; user: false when a
// condvar wait unlocks and relocks (its waiter stays a user of the mutex).
int mutex_lock_impl(pthread_mutex_t* mu, int64_t deadline, bool try_only, const struct timespec* abstime,
                    bool user = true);
int mutex_unlock_impl(pthread_mutex_t* mu, bool user = true);
bool mutex_is_pshared(const pthread_mutex_t* mu);

// Called on an exiting G: robust mutexes it still holds become
// owner-died for their next locker.
void mutex_release_robust_on_exit(void* g_robust_head);

}  // namespace mnp
