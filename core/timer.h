// core/timer.h — per-P timer heaps: sleeps and timed waits park the G and a
// timer makes it runnable again.
//
// Each P owns a 4-ary min-heap of timers ordered by `when`
// (CLOCK_MONOTONIC ns) under its own lock; `when0` mirrors the earliest
// deadline so others can look without the lock. Timers live in the waiting
// G's frame: no allocation. A heap slot holds the deadline beside the
// pointer, so that ordering the heap reads only the heap's own array: each
// Timer sits on a different G's stack, and with 10,000 sleepers following
// the pointers to compare cost a cache miss per look (the heap's removal
// was 14-18% of BM_Sleepers10k). Four children per node halve the depth.
//
// Who runs timers: the P's owner at scheduling points (park, yield, the
// scheduler loop), any M looking for work (it runs the expired timers of
// every P it visits), and an idle M, which sleeps until the earliest
// deadline of all Ps instead of polling (one idle M at a time is the "timer
// M"; adding an earlier timer wakes it).
//
// State protocol of a Timer (one CAS decides who acts):
//   Pending --fire--> Running --> Done       (fn runs exactly once)
//   Pending --timer_del--> Cancelled         (fn never runs)
// timer_del on a Running timer waits until Done, so the waiter's frame stays
// valid until the firing M is finished with it.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#include "core/futex.h"

namespace mnp {

struct G;
struct P;
struct Timer;

// A timer's action: decides the wait the timer ends and returns the G to
// ready when it did, else null (a waker or cancel decided it first). The
// firing M readies that G only after marking the timer done (fire).
using TimerFn = G* (*)(Timer*);

enum TimerState : uint32_t { kTimerIdle, kTimerPending, kTimerRunning, kTimerDone, kTimerCancelled };

struct Timer {
  int64_t when = 0;
  TimerFn fn = nullptr;  // null: ready g
  G* g = nullptr;
  void* arg = nullptr;
  std::atomic<uint32_t> state{kTimerIdle};
  P* pp = nullptr;     // heap it is on (lock of that heap)
  uint32_t index = 0;  // its slot in that heap (lock)
};

struct TimerSlot {
  int64_t when;  // t->when, copied
  Timer* t;
};

struct TimerHeap {
  Lock lock;
  TimerSlot* heap = nullptr;  // (lock)
  uint32_t n = 0, cap = 0;    // (lock)
  std::atomic<int64_t> when0{INT64_MAX};
};

constexpr int64_t kNever = INT64_MAX;

// Adds t to the current P's heap (P0's when the caller holds no P).
void timer_add(Timer* t);
// Cancels t. Returns true if it will never fire; false if it fired (its fn
// has finished when this returns).
bool timer_del(Timer* t);
// Runs the expired timers of pp. Returns how many fired.
int timers_run(P* pp, int64_t now);
// The same for every P; returns how many fired in all.
int timers_run_all(int64_t now);
// Earliest deadline over all Ps, kNever if none.
int64_t timers_earliest();

// The timer deadline (CLOCK_MONOTONIC ns, kNever when out of range) of an
// absolute time on clock clk, which the caller checked is REALTIME,
// MONOTONIC, BOOTTIME or TAI. A MONOTONIC time is the deadline itself.
// Another clock is read before the monotonic one, so the deadline is never
// earlier than the time named on that clock, however long the thread is
// kept between the two reads (a signal handler, the kernel): a wait that
// ends at the deadline has reached the time on the clock it names, too. A
// later step of that clock (settimeofday) does not move the deadline.
int64_t timer_deadline_abs(clockid_t clk, const struct timespec* abstime);

}  // namespace mnp
