// core/timer.cpp — timer heaps. See timer.h.
#include "core/timer.h"

#include <sys/mman.h>

#include "core/base.h"
#include "core/compact.h"
#include "core/sched.h"
#include "core/sched_internal.h"

namespace mnp {

namespace {

constexpr uint32_t kArity = 4;

// A Timer lives in its G's frame, and a long-parked G's frames may be
// compacted (core/compact.h): writing the index there would bring the whole
// G back (10,000 sleepers were all restored by the moves of a few inserts).
// Its index is then left stale, and timer_del checks it against the heap.
inline void place(TimerHeap* h, uint32_t i, TimerSlot s) {
  h->heap[i] = s;
  if (MNP_UNLIKELY(compact_count() != 0) && compact_holds(reinterpret_cast<uintptr_t>(&s.t->index))) return;
  s.t->index = i;
}

// Moves the slot at i up or down to its place; the slot in hand is written
// once, where it stops.
void sift_up(TimerHeap* h, uint32_t i) {
  TimerSlot s = h->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / kArity;
    if (h->heap[parent].when <= s.when) break;
    place(h, i, h->heap[parent]);
    i = parent;
  }
  place(h, i, s);
}

void sift_down(TimerHeap* h, uint32_t i) {
  TimerSlot s = h->heap[i];
  for (;;) {
    uint32_t first = kArity * i + 1;
    if (first >= h->n) break;
    uint32_t end = first + kArity < h->n ? first + kArity : h->n;
    uint32_t m = first;
    for (uint32_t c = first + 1; c < end; c++)
      if (h->heap[c].when < h->heap[m].when) m = c;
    if (h->heap[m].when >= s.when) break;
    place(h, i, h->heap[m]);
    i = m;
  }
  place(h, i, s);
}

void grow_locked(TimerHeap* h) {
  uint32_t cap = h->cap ? h->cap * 2 : 64;
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(cap * sizeof(TimerSlot)), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) fatal("cannot grow a timer heap");
  auto* nh = reinterpret_cast<TimerSlot*>(r);
  for (uint32_t i = 0; i < h->n; i++) nh[i] = h->heap[i];
  if (h->heap) raw_syscall(SYS_munmap, reinterpret_cast<long>(h->heap), static_cast<long>(h->cap * sizeof(TimerSlot)));
  h->heap = nh;
  h->cap = cap;
}

void remove_at_locked(TimerHeap* h, uint32_t i) {
  uint32_t last = --h->n;
  if (i != last) {
    // The last slot fills the hole and moves whichever way it must.
    place(h, i, h->heap[last]);
    if (i > 0 && h->heap[(i - 1) / kArity].when > h->heap[i].when) sift_up(h, i);
    else sift_down(h, i);
  }
  h->when0.store(h->n ? h->heap[0].when : kNever, std::memory_order_release);
}

// Done before the G is readied: once running, the G's timer_del waits for
// Done, and ready's wake-up of an M (a futex wake) may take this M off its
// CPU for a while first; that G spun meanwhile (timer_del was 1.2% of
// memcached's samples on 2 CPUs shared with its clients). The G cannot
// run before it is readied, so its frame, which holds t, stays put.
void fire(Timer* t) {
  G* g = t->fn ? t->fn(t) : t->g;
  t->state.store(kTimerDone, std::memory_order_release);
  if (g) {
    g->woke_by_timer.store(true, std::memory_order_relaxed);
    ready(g, true);
  }
}

}  // namespace

void timer_add(Timer* t) {
  G* cur = tls_g;
  P* pp = (cur && cur->m && cur->m->p) ? cur->m->p : &sched.allp[0];
  TimerHeap* h = &pp->timers;
  t->pp = pp;
  t->state.store(kTimerPending, std::memory_order_relaxed);
  bool earliest;
  {
    LockGuard lk(h->lock);
    if (h->n == h->cap) grow_locked(h);
    uint32_t i = h->n++;
    place(h, i, TimerSlot{t->when, t});
    sift_up(h, i);
    earliest = h->heap[0].t == t;
    h->when0.store(h->heap[0].when, std::memory_order_release);
  }
  if (earliest) timer_m_notify(t->when);
}

bool timer_del(Timer* t) {
  uint32_t s = kTimerPending;
  // Fired already (the usual end of a sleep): leaving Pending is final, so
  // no heap lock is needed to know it.
  if (t->state.load(std::memory_order_acquire) != kTimerPending) {
    while (t->state.load(std::memory_order_acquire) != kTimerDone) cpu_relax();
    return false;
  }
  TimerHeap* h = &t->pp->timers;
  {
    LockGuard lk(h->lock);
    if (t->state.compare_exchange_strong(s, kTimerCancelled, std::memory_order_acq_rel)) {
      uint32_t i = t->index;  // stale if it moved while compacted (place)
      if (i >= h->n || h->heap[i].t != t) {
        // O(n) under the lock: only for a Timer that moved while its G was
        // compacted (its G then waited long already).
        for (i = 0; i < h->n && h->heap[i].t != t; i++) {
        }
        if (i == h->n) fatal("timer_del: a pending timer is not in its heap");
      }
      remove_at_locked(h, i);
      return true;
    }
  }
  while (t->state.load(std::memory_order_acquire) != kTimerDone) cpu_relax();
  return false;
}

int timers_run(P* pp, int64_t now) {
  TimerHeap* h = &pp->timers;
  if (h->when0.load(std::memory_order_acquire) > now) return 0;
  constexpr int kBatch = 32;
  Timer* due[kBatch];
  int n = 0;
  {
    LockGuard lk(h->lock);
    while (n < kBatch && h->n > 0 && h->heap[0].when <= now) {
      Timer* t = h->heap[0].t;
      remove_at_locked(h, 0);
      uint32_t s = kTimerPending;
      if (t->state.compare_exchange_strong(s, kTimerRunning, std::memory_order_acq_rel)) due[n++] = t;
    }
  }
  for (int i = 0; i < n; i++) fire(due[i]);
  return n;
}

int64_t timer_deadline_abs(clockid_t clk, const struct timespec* abstime) {
  constexpr int64_t kSec = 1000000000;
  if (clk == CLOCK_MONOTONIC) {
    if (abstime->tv_sec < 0) return 0;
    if (abstime->tv_sec >= kNever / kSec - 1) return kNever;
    return static_cast<int64_t>(abstime->tv_sec) * kSec + abstime->tv_nsec;
  }
  struct timespec now;
  clock_gettime(clk, &now);
  int64_t mono = nanotime();  // after the other clock: see timer.h
  int64_t secs = static_cast<int64_t>(abstime->tv_sec) - now.tv_sec;
  if (secs >= (kNever - mono) / kSec - 1) return kNever;
  int64_t left = secs * kSec + (abstime->tv_nsec - now.tv_nsec);
  return left > 0 ? mono + left : mono;
}

int timers_run_all(int64_t now) {
  int fired = 0;
  for (uint32_t i = 0; i < sched.nprocs; i++) fired += timers_run(&sched.allp[i], now);
  return fired;
}

int64_t timers_earliest() {
  int64_t best = kNever;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    int64_t w = sched.allp[i].timers.when0.load(std::memory_order_acquire);
    if (w < best) best = w;
  }
  return best;
}

}  // namespace mnp
