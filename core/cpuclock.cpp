// core/cpuclock.cpp — per-G CPU clocks. See cpuclock.h.
//
// What a G's clock is. The CPU time of its M (the kernel thread's own
// clock, CLOCK_THREAD_CPUTIME_ID) while the G was switched in: from the
// switch that started it on an M to the switch that took it off. Scheduler
// time on g0 belongs to no G. A wrapped call that sleeps in the kernel
// costs its M no CPU time, so it costs the G none either.
//
// Why not read the M's clock at every switch. The kernel has no vDSO path
// for thread CPU clocks: each read is a system call, about 3 us on the
// machine this was measured on (no FSGSBASE, a VM), where a whole G switch
// costs 5-6 us. Reading it twice per switch (or once) would add half again
// to every switch.
//
// What we do instead. Each M keeps a base: a real reading of its clock
// (cpu_base) and the monotonic time it was taken (cpu_wall). Between two
// real readings the M's CPU time is estimated as cpu_base + the monotonic
// time since cpu_wall (one vDSO clock_gettime, ~60 ns): CPU time never runs
// faster than wall time, and the two agree while the M stays on its CPU. A
// switch reads the real clock only when the base is older than
// kEstimateNs, or was marked stale because the M slept in the kernel where
// the runtime can see it (cpu_stale: idle in mpark, in the netpoller, a
// wrapped call that took long). So a switch costs one vDSO read, plus at
// most one real read per kEstimateNs per M (<= 0.3% of an M's time).
// Rejected: the TSC alone (needs calibration and is no better than the
// vDSO read here); perf_event's self-monitoring page (an fd per M in the
// program's fd table, and no user-space time on kvm-clock guests).
//
// The error this leaves. The credit of a switch is exact up to the time
// its M lost the CPU without the runtime seeing it (the kernel preempting
// the M, a runtime Lock slept on, a wrapped call that sysmon did not see
// last a whole round: P::syscall_long) inside one estimated stretch, so at most kEstimateNs per
// switch and in practice the length of such a stall. A stretch ended by a
// real reading is never over-credited: its start was estimated from above,
// and a negative credit counts as 0. A G's clock never goes backwards.
//
// Readers. The G itself reads its M's real clock (as a native thread's read
// costs a system call too) and adds what it used since it was switched in.
// Another thread reads the G's fields under a sequence counter (odd while
// the G's M writes them at a switch) and, while the G is switched in, its
// M's kernel clock by tid. Every estimate is at least the real clock at its
// time, so a later switch never credits less than a reader already saw.
#include "core/cpuclock.h"

#include <time.h>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {
namespace {

constexpr int64_t kEstimateNs = 1000 * 1000;

// Real reading of mp's clock, taken on mp's own thread; becomes the base.
int64_t m_cpu_read(M* mp, int64_t now) {
  int64_t c = thread_cpu_ns(0);
  if (c < 0) return mp->cpu_base;  // cannot happen on Linux; keep the old base
  mp->cpu_base = c;
  mp->cpu_wall = now;
  mp->cpu_valid = true;
  return c;
}

// mp's clock now, estimated from above (on mp's own thread).
int64_t m_cpu_now(M* mp) {
  int64_t now = nanotime();
  if (MNP_LIKELY(mp->cpu_valid && now - mp->cpu_wall < kEstimateNs)) return mp->cpu_base + (now - mp->cpu_wall);
  return m_cpu_read(mp, now);
}

// Writer side of G::cpu_seq: only the M that switches the G, one at a time.
inline void seq_begin(G* gp) {
  gp->cpu_seq.store(gp->cpu_seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}
inline void seq_end(G* gp) {
  gp->cpu_seq.store(gp->cpu_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace

int64_t thread_cpu_ns(int tid) {
  // MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED); tid 0 is the caller.
  clockid_t clk = tid ? static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6) : CLOCK_THREAD_CPUTIME_ID;
  struct timespec ts;
  if (raw_syscall(SYS_clock_gettime, clk, reinterpret_cast<long>(&ts)) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void cpu_switch(M* mp, G* prev, G* next) {
  int64_t now = m_cpu_now(mp);
  if (prev) {
    int64_t d = now - prev->cpu_start.load(std::memory_order_relaxed);
    seq_begin(prev);
    if (d > 0) prev->cpu_ns.store(prev->cpu_ns.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    prev->cpu_m.store(nullptr, std::memory_order_relaxed);
    seq_end(prev);
  }
  if (next) {
    seq_begin(next);
    next->cpu_start.store(now, std::memory_order_relaxed);
    next->cpu_m.store(mp, std::memory_order_relaxed);
    seq_end(next);
  }
}

void cpu_stale(M* mp) { mp->cpu_valid = false; }

void cpu_init_g(G* gp, M* running_on) {
  // The main G owns what its kernel thread used before the runtime started
  // (start from the thread clock's 0); a new G starts from nothing.
  seq_begin(gp);
  gp->cpu_ns.store(0, std::memory_order_relaxed);
  gp->cpu_start.store(0, std::memory_order_relaxed);
  gp->cpu_m.store(running_on, std::memory_order_relaxed);
  seq_end(gp);
}

int64_t g_cpu_ns(G* gp) {
  if (gp == get_user_g() && gp->m) {
    // On its own M, which no switch can take away while runtime code runs.
    M* mp = gp->m;
    int64_t c = m_cpu_read(mp, nanotime());
    int64_t d = c - gp->cpu_start.load(std::memory_order_relaxed);
    return gp->cpu_ns.load(std::memory_order_relaxed) + (d > 0 ? d : 0);
  }
  for (;;) {
    uint32_t s = gp->cpu_seq.load(std::memory_order_acquire);
    if (s & 1) {
      cpu_relax();
      continue;
    }
    int64_t ns = gp->cpu_ns.load(std::memory_order_relaxed);
    int64_t start = gp->cpu_start.load(std::memory_order_relaxed);
    M* mp = gp->cpu_m.load(std::memory_order_relaxed);
    int64_t run = 0;
    if (mp) {
      int64_t c = thread_cpu_ns(mp->tid);
      if (c > start) run = c - start;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (gp->cpu_seq.load(std::memory_order_relaxed) == s) return ns + run;
  }
}

}  // namespace mnp
