// core/runq.h — a P's local run queue: a 256-slot ring plus `next`.
//
// Ownership: only the P's owner pushes (at tail) and writes `next`; the owner
// and thieves pop from head with a CAS. Ordering protocol:
//   push:  slot store (relaxed) ... tail.store(release)
//   pop:   head.load(acquire), tail.load(acquire), slot load, head CAS(release)
//   steal: same as pop for a batch of n = half the queue; the thief copies
//          the slots *before* its CAS on head, so a CAS that fails means the
//          copy may be stale and is discarded.
// A slot read by a thief may be overwritten by the owner once head moves past
// it, which only happens after the thief's CAS; hence slots are read and
// written atomically (relaxed) and the reads validated by the CAS.
//
// `next` holds the G readied most recently by the owner. It inherits the
// remaining time slice (schedtick does not advance, sched.cpp execute), so a
// ping-pong pair stays on one P but shares one slice: once sysmon ends the
// slice, the ring's head runs before next (sched.cpp next_local). Thieves
// take it only as a last resort.
#pragma once

#include <atomic>
#include <cstdint>

namespace mnp {

struct G;

constexpr uint32_t kRunqSize = 256;

struct RunQ {
  std::atomic<uint32_t> head{0};
  std::atomic<uint32_t> tail{0};
  std::atomic<G*> next{nullptr};
  // Plain storage reached through slot(): with no initializer, a P made in
  // fresh (zero) memory does not write its 2 KiB ring at start-up (a page
  // fault per page; sched_init_main).
  G* slots[kRunqSize];

  std::atomic_ref<G*> slot(uint32_t i) { return std::atomic_ref<G*>(slots[i % kRunqSize]); }

  bool empty() const {
    // Consistent snapshot: head and tail, then next, then head again.
    for (;;) {
      uint32_t h = head.load(std::memory_order_acquire);
      uint32_t t = tail.load(std::memory_order_acquire);
      G* n = next.load(std::memory_order_acquire);
      if (tail.load(std::memory_order_acquire) == t) return h == t && n == nullptr;
    }
  }
  uint32_t size() const {
    uint32_t h = head.load(std::memory_order_acquire);
    uint32_t t = tail.load(std::memory_order_acquire);
    return t - h;
  }
};

// Owner: appends gp. Returns false when the ring is full (caller moves half
// of it to the global queue with runq_take_half_for_global).
inline bool runq_push_tail(RunQ* q, G* gp) {
  uint32_t h = q->head.load(std::memory_order_acquire);
  uint32_t t = q->tail.load(std::memory_order_relaxed);
  if (t - h >= kRunqSize) return false;
  q->slot(t).store(gp, std::memory_order_relaxed);
  q->tail.store(t + 1, std::memory_order_release);
  return true;
}

// Owner: removes up to kRunqSize/2 Gs from the head into batch (for the global
// queue). Returns the count, 0 if a thief got there first (retry the push).
inline uint32_t runq_take_half(RunQ* q, G** batch) {
  uint32_t h = q->head.load(std::memory_order_acquire);
  uint32_t t = q->tail.load(std::memory_order_relaxed);
  uint32_t n = (t - h) / 2;
  if (n != kRunqSize / 2) return 0;  // not full any more: a thief took some
  for (uint32_t i = 0; i < n; i++) batch[i] = q->slot(h + i).load(std::memory_order_relaxed);
  if (!q->head.compare_exchange_strong(h, h + n, std::memory_order_release, std::memory_order_relaxed)) return 0;
  return n;
}

// Owner: the ring's head, passing over next.
inline G* runq_pop_ring(RunQ* q) {
  for (;;) {
    uint32_t h = q->head.load(std::memory_order_acquire);
    uint32_t t = q->tail.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    G* gp = q->slot(h).load(std::memory_order_relaxed);
    if (q->head.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_relaxed)) return gp;
  }
}

// Owner: next first, then the ring. *inherit is set when the G came from next.
inline G* runq_pop(RunQ* q, bool* inherit) {
  G* n = q->next.load(std::memory_order_relaxed);
  if (n && q->next.compare_exchange_strong(n, nullptr, std::memory_order_acquire)) {
    *inherit = true;
    return n;
  }
  *inherit = false;
  return runq_pop_ring(q);
}

// Thief: copies half of src's ring into batch (capacity kRunqSize/2). With
// take_next, an empty ring gives up src's next instead. Returns the count.
inline uint32_t runq_grab(RunQ* src, G** batch, bool take_next) {
  for (;;) {
    uint32_t h = src->head.load(std::memory_order_acquire);
    uint32_t t = src->tail.load(std::memory_order_acquire);
    uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (take_next) {
        G* nx = src->next.load(std::memory_order_acquire);
        if (nx && src->next.compare_exchange_strong(nx, nullptr, std::memory_order_acq_rel)) {
          batch[0] = nx;
          return 1;
        }
      }
      return 0;
    }
    if (n > kRunqSize / 2) continue;  // h and t read at different moments
    for (uint32_t i = 0; i < n; i++) batch[i] = src->slot(h + i).load(std::memory_order_relaxed);
    if (src->head.compare_exchange_weak(h, h + n, std::memory_order_release, std::memory_order_relaxed)) return n;
  }
}

}  // namespace mnp
