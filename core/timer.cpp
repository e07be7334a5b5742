// core/timer.cpp — timer heaps. See timer.h.
#include "core/timer.h"

#include <sys/mman.h>

#include "core/base.h"
#include "core/sched.h"
#include "core/sched_internal.h"

namespace mnp {

namespace {

void heap_swap(TimerHeap* h, uint32_t i, uint32_t j) {
  Timer* a = h->heap[i];
  Timer* b = h->heap[j];
  h->heap[i] = b;
  h->heap[j] = a;
  b->index = i;
  a->index = j;
}

void sift_up(TimerHeap* h, uint32_t i) {
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (h->heap[parent]->when <= h->heap[i]->when) break;
    heap_swap(h, i, parent);
    i = parent;
  }
}

void sift_down(TimerHeap* h, uint32_t i) {
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && h->heap[l]->when < h->heap[m]->when) m = l;
    if (r < h->n && h->heap[r]->when < h->heap[m]->when) m = r;
    if (m == i) return;
    heap_swap(h, i, m);
    i = m;
  }
}

void grow_locked(TimerHeap* h) {
  uint32_t cap = h->cap ? h->cap * 2 : 64;
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(cap * sizeof(Timer*)), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) fatal("cannot grow a timer heap");
  auto** nh = reinterpret_cast<Timer**>(r);
  for (uint32_t i = 0; i < h->n; i++) nh[i] = h->heap[i];
  if (h->heap) raw_syscall(SYS_munmap, reinterpret_cast<long>(h->heap), static_cast<long>(h->cap * sizeof(Timer*)));
  h->heap = nh;
  h->cap = cap;
}

void remove_at_locked(TimerHeap* h, uint32_t i) {
  uint32_t last = --h->n;
  if (i != last) {
    heap_swap(h, i, last);
    sift_down(h, i);
    sift_up(h, i);
  }
  h->when0.store(h->n ? h->heap[0]->when : kNever, std::memory_order_release);
}

void fire(Timer* t) {
  if (t->fn) {
    t->fn(t);
  } else {
    ready(t->g, true);
  }
  t->state.store(kTimerDone, std::memory_order_release);
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
    t->index = h->n;
    h->heap[h->n++] = t;
    sift_up(h, t->index);
    earliest = h->heap[0] == t;
    h->when0.store(h->heap[0]->when, std::memory_order_release);
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
      remove_at_locked(h, t->index);
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
    while (n < kBatch && h->n > 0 && h->heap[0]->when <= now) {
      Timer* t = h->heap[0];
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

int64_t timers_earliest() {
  int64_t best = kNever;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    int64_t w = sched.allp[i].timers.when0.load(std::memory_order_acquire);
    if (w < best) best = w;
  }
  return best;
}

}  // namespace mnp
