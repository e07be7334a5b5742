// core/altstack.h — alternate signal stacks that move with their G
// (docs/ARCHITECTURE.md, "Alternate signal stacks").
//
// The kernel keeps one alternate signal stack per thread. A G that gives
// the kernel one of its own (sigaltstack, interpose/wire.cpp) has it put
// on whatever M runs it: each M records what its thread has (M::alt_lo,
// alt_hi), and a switch puts the incoming G's stack (or none) when it
// differs: one sigaltstack call, and none between Gs that have none.
// Every Rust thread and Ruby's timer thread enable one; until 2026-12-07
// such a G was wired to its M, and a Rust channel round trip between two
// threads took 54-60 µs instead of 8.5-9 natively.
//
// One region is given to the kernel for one live G at a time (the claim
// table below): a G that enables a region another holds keeps it in its
// view only (G::altstack_virtual), or the runtime's SA_ONSTACK handler
// would run on it on two Ms at once (varnishd gives all its threads one).
#pragma once

#include <cstdint>

#include "core/sched.h"

namespace mnp {

// Linux's SS_AUTODISARM (linux/signal.h), which glibc's headers lack.
constexpr int kSsAutodisarm = static_cast<int>(1U << 31);

// mp's thread (the caller's own) gets want's alternate stack: its own if
// it gave the kernel one (G::own_altstack), else none; none too while
// want_sp (where want runs or will resume) is on a stack it enabled with
// SS_AUTODISARM, which the kernel keeps disarmed while a handler runs
// there. Not while the thread runs on the stack it has (the kernel
// refuses: EPERM). A refusal puts none; one of that too ends the process.
void altstack_put(M* mp, const G* want, uintptr_t want_sp);

// Whether mp's thread already has what want needs.
inline bool altstack_fits(const M* mp, uintptr_t lo, uintptr_t hi) { return mp->alt_lo == lo && mp->alt_hi == hi; }

// The claim table, under its own lock: the region at lo is g's to give to
// the kernel (true), or another live G's (false). altstack_unclaim drops
// g's claim on lo; altstack_exit drops whatever g holds (its end).
bool altstack_claim(G* g, uintptr_t lo);
void altstack_unclaim(G* g, uintptr_t lo);
void altstack_exit(G* g);
// In a child of fork: only self lives; the table is reset to its claim.
void altstack_after_fork(G* self);

}  // namespace mnp
