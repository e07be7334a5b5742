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
// (cpu_base) and the time it was taken. Between two real readings the M's
// CPU time is estimated as cpu_base + the wall time since then: CPU time
// never runs faster than wall time, and the two agree while the M stays on
// its CPU. The wall time since the base is the TSC's advance (one `rdtsc`,
// ~10-12 ns on the 2-core machine with FSGSBASE) scaled by a rate measured
// against the monotonic clock; until the rate is known, one vDSO
// clock_gettime (~25 ns there, ~60 ns on the VM above). On that machine a
// G-to-G switch is ~45 ns, and the vDSO read per switch made the hand-off
// rows of bench_thread/bench_sync 20-30% slower. A switch
// reads the real clock only when the base is older than kEstimateNs, or was
// marked stale because the M slept in the kernel where the runtime can see
// it (cpu_stale: idle in mpark, in the netpoller, a wrapped call that took
// long). So a switch costs one TSC read, plus at most one real read per
// kEstimateNs per M (<= 0.3% of an M's time).
//
// The rate (g_cpu_tsc_mult). Each M keeps the first (monotonic time, TSC) pair
// of its real readings; a later real reading at least kCalibrateNs after it
// gives the rate, published once for all Ms. Each pair is taken between two
// TSC reads that must lie close together (the thread was not preempted
// between them), so the rate is off by well under the margin added to it
// (kTscMarginShift): an estimate from the TSC stays at or above the wall
// time, as the vDSO one does. A TSC that goes backwards (another CPU's, not
// in step) or jumps past kEstimateNs gives a real reading instead. The TSC
// is not used at all where the CPU does not call it invariant, or where it
// is slower to read than the vDSO clock (trapped by a hypervisor).
// Rejected: perf_event's self-monitoring page (an fd per M in the
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

#include <cpuid.h>
#include <time.h>

#include <atomic>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {

constinit std::atomic<uint64_t> g_cpu_tsc_mult{0};

namespace {

constexpr int64_t kEstimateNs = 1000 * 1000;
constexpr int64_t kCalibrateNs = 20 * 1000 * 1000;
constexpr int64_t kCalibrateMaxNs = 1000 * 1000 * 1000;
// The two TSC reads around a calibration pair's clock read lie within this
// many cycles (a few us at any TSC rate), or the pair is not used.
constexpr uint64_t kPairCycles = 20000;
// 1/256 (0.4%) added to the measured rate; its error is below 0.1%.
constexpr uint64_t kTscMarginShift = 8;

// kEstimateNs in TSC cycles, set with g_cpu_tsc_mult.
constinit std::atomic<uint64_t> g_tsc_span{0};

// The TSC is not to be used (tsc_invariant, tsc_cheaper_than_clock), and
// how often it was found slower to read than the clock.
constinit std::atomic<bool> g_tsc_refused{false};
constinit std::atomic<int> g_tsc_slower{0};

// A (monotonic ns, TSC) pair taken close together, or tsc 0.
struct ClockPair {
  int64_t ns;
  uint64_t tsc;
};
ClockPair clock_pair() {
  if (g_tsc_refused.load(std::memory_order_relaxed)) return {nanotime(), 0};
  uint64_t t0 = arch_cycles();
  int64_t ns = nanotime();
  uint64_t t1 = arch_cycles();
  return {ns, t1 - t0 < kPairCycles ? t0 + (t1 - t0) / 2 : 0};
}

// The CPU says its TSC runs at a constant rate in every power state and in
// step across its cores (CPUID 0x80000007, EDX bit 8: the kernel's
// constant_tsc and nonstop_tsc). Asked once, at calibration.
bool tsc_invariant() {
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007) return false;
  if (!__get_cpuid(0x80000007, &a, &b, &c, &d)) return false;
  return (d >> 8) & 1;
}

// Where a hypervisor traps `rdtsc` (the kernel then keeps time with
// another clocksource, and its vDSO read is the cheaper one), the TSC
// is not used: 64 reads of each, timed.
bool tsc_cheaper_than_clock() {
  constexpr int kReads = 64;
  int64_t t0 = nanotime();
  uint64_t sum = 0;
  for (int i = 0; i < kReads; i++) sum += arch_cycles();
  int64_t t1 = nanotime();
  for (int i = 0; i < kReads; i++) sum += static_cast<uint64_t>(nanotime());
  int64_t t2 = nanotime();
  asm volatile("" ::"r"(sum));
  return t1 - t0 < t2 - t1;
}

void calibrate(M* mp, ClockPair now) {
  if (!now.tsc || g_cpu_tsc_mult.load(std::memory_order_relaxed) || g_tsc_refused.load(std::memory_order_relaxed))
    return;
  if (!mp->cpu_cal_tsc) {
    mp->cpu_cal_ns = now.ns;
    mp->cpu_cal_tsc = now.tsc;
    return;
  }
  int64_t dns = now.ns - mp->cpu_cal_ns;
  if (dns < kCalibrateNs) return;
  uint64_t dtsc = now.tsc - mp->cpu_cal_tsc;
  // A first pair older than a second may span a suspend or a paused VM;
  // a TSC slower than 500 MHz (where kPairCycles is no longer a few us) or
  // faster than 100 GHz is not one to trust, or the thread moved to a CPU
  // whose TSC is not in step: start again from this pair.
  if (dns > kCalibrateMaxNs || dtsc < static_cast<uint64_t>(dns) / 2 || dtsc / 100 > static_cast<uint64_t>(dns)) {
    mp->cpu_cal_ns = now.ns;
    mp->cpu_cal_tsc = now.tsc;
    return;
  }
  if (!tsc_invariant()) {
    g_tsc_refused.store(true, std::memory_order_relaxed);
    return;
  }
  if (!tsc_cheaper_than_clock()) {
    // Once more 20 ms later (a preemption may have spoilt the timing);
    // three times slower and the TSC is left alone.
    mp->cpu_cal_tsc = 0;
    if (g_tsc_slower.fetch_add(1, std::memory_order_relaxed) + 1 >= 3)
      g_tsc_refused.store(true, std::memory_order_relaxed);
    return;
  }
  uint64_t mult = (static_cast<unsigned __int128>(dns) << 32) / dtsc;
  mult += mult >> kTscMarginShift;
  g_tsc_span.store(static_cast<uint64_t>((static_cast<unsigned __int128>(kEstimateNs) << 32) / mult),
                   std::memory_order_relaxed);
  g_cpu_tsc_mult.store(mult, std::memory_order_release);
}

// Real reading of mp's clock, taken on mp's own thread; becomes the base.
int64_t m_cpu_read(M* mp) {
  // The stamp comes first: estimates then start from a moment before the
  // kernel's sample, never below the real clock.
  ClockPair now = clock_pair();
  int64_t c = thread_cpu_ns(0);
  if (c < 0) return mp->cpu_base;  // cannot happen on Linux; keep the old base
  calibrate(mp, now);
  mp->cpu_base = c;
  mp->cpu_wall = now.ns;
  mp->cpu_tsc = now.tsc;
  // A base without a TSC reading (the pair was split) is used with the
  // monotonic clock until the next real reading.
  mp->cpu_valid = true;
  return c;
}

// mp's clock at cycle count tsc (now), estimated from above (on mp's own
// thread).
int64_t m_cpu_now(M* mp, uint64_t tsc) {
  uint64_t mult = g_cpu_tsc_mult.load(std::memory_order_acquire);
  if (MNP_LIKELY(mult && mp->cpu_valid && mp->cpu_tsc)) {
    uint64_t d = tsc - mp->cpu_tsc;  // huge if the TSC went backwards
    if (MNP_LIKELY(d < g_tsc_span.load(std::memory_order_relaxed)))
      return mp->cpu_base + static_cast<int64_t>((static_cast<unsigned __int128>(d) * mult) >> 32);
    return m_cpu_read(mp);
  }
  int64_t now = nanotime();
  if (mp->cpu_valid && now - mp->cpu_wall < kEstimateNs) return mp->cpu_base + (now - mp->cpu_wall);
  return m_cpu_read(mp);
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

void cpu_switch(M* mp, G* prev, G* next, uint64_t tsc) {
  int64_t now = m_cpu_now(mp, tsc);
  if (prev) {
    int64_t d = now - prev->cpu_start.load(std::memory_order_relaxed);
    seq_begin(prev);
    if (d > 0) prev->cpu_ns.store(prev->cpu_ns.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    prev->cpu_m.store(nullptr, std::memory_order_relaxed);
    seq_end(prev);
  }
  if (next) {
    if (tsc) mp->g_in_tsc.store(tsc, std::memory_order_relaxed);
    seq_begin(next);
    next->cpu_start.store(now, std::memory_order_relaxed);
    next->cpu_m.store(mp, std::memory_order_relaxed);
    seq_end(next);
  }
}

MNP_STARTUP void cpu_stale(M* mp) { mp->cpu_valid = false; }

int64_t tsc_span_ns(uint64_t cycles) {
  uint64_t mult = g_cpu_tsc_mult.load(std::memory_order_acquire);
  if (!mult) return -1;
  return static_cast<int64_t>((static_cast<unsigned __int128>(cycles) * mult) >> 32);
}

int64_t cpu_stint_ns(M* mp, G* gp) {
  return m_cpu_now(mp, cpu_switch_tsc()) - gp->cpu_start.load(std::memory_order_relaxed);
}

MNP_STARTUP void cpu_init_g(G* gp, M* running_on) {
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
    // On its own M, held: a handler of the program's could otherwise read
    // the clock in the middle of this reading, or park the G and move it
    // to another M while it writes this one's base.
    m_lock_enter();
    M* mp = gp->m;
    int64_t c = m_cpu_read(mp);
    int64_t d = c - gp->cpu_start.load(std::memory_order_relaxed);
    int64_t ns = gp->cpu_ns.load(std::memory_order_relaxed) + (d > 0 ? d : 0);
    m_lock_exit();
    return ns;
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
