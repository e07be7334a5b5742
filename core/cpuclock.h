// core/cpuclock.h — the CPU time of each G (docs/ARCHITECTURE.md, "CPU
// clocks").
//
// A G has no kernel task, so the kernel's per-thread CPU clock measures the
// M, which runs many Gs. The runtime keeps a clock per G instead: every
// switch credits the outgoing G with the CPU time its M spent since the G
// was switched in. See cpuclock.cpp for how the M's clock is read cheaply.
#pragma once

#include <atomic>
#include <cstdint>

#include "arch/x86_64/machine.h"

namespace mnp {

struct G;
struct M;

// ns per TSC cycle in 32.32 fixed point, margin included; 0 until
// measured, or where the TSC is not used (cpuclock.cpp).
extern std::atomic<uint64_t> g_cpu_tsc_mult;
// Whether cpu_switch wants the cycle counter (else it reads the clock).
inline bool cpu_uses_tsc() { return g_cpu_tsc_mult.load(std::memory_order_relaxed) != 0; }
// cpu_switch's tsc argument: the cycle counter now, or 0 where it is unused.
inline uint64_t cpu_switch_tsc() { return cpu_uses_tsc() ? arch_cycles() : 0; }

// The accounting of a switch on mp, run by mp itself: prev (a user G, or
// null) stops running there, next (a user G, or null) starts; tsc is the
// cycle counter read just before (arch_cycles), or 0 if !cpu_uses_tsc().
void cpu_switch(M* mp, G* prev, G* next, uint64_t tsc);
// mp slept in the kernel where the runtime knows it (idle, in the netpoller,
// in a long wrapped call): its next estimate must read the kernel's clock.
void cpu_stale(M* mp);
// A new G's clock (0), or the main G's (all its kernel thread used so far).
void cpu_init_g(G* gp, M* running_on);
// The CPU time gp has used, in ns: the caller's own (gp == the running G)
// or another live G's. Never decreases.
int64_t g_cpu_ns(G* gp);
// CPU time gp has used since it was last switched in on mp, its own M
// (called on mp, held): an estimate, no system call in the common case.
int64_t cpu_stint_ns(M* mp, G* gp);
// A span of `cycles` TSC cycles in ns, or -1 before the rate is known
// (or where the TSC is not used).
int64_t tsc_span_ns(uint64_t cycles);
// The kernel's CPU clock of a thread of this process (0: the caller), ns;
// -1 if it has none.
int64_t thread_cpu_ns(int tid);

}  // namespace mnp
