// core/sched_internal.h — the scheduler's own interface between the files
// that make it up: sched.cpp (Gs, Ms, Ps, run queues, M sleep and wake-up),
// syscall.cpp (the syscall hand-off and sysmon) and timer.cpp. What the
// rest of the runtime and interpose/ may call is in sched.h; nothing else
// includes this header.
#pragma once

#include <cstdint>

#include "core/sched.h"

namespace mnp {

// ---- sched.cpp --------------------------------------------------------------

// The idle P and idle M lists; the caller holds Sched::lock.
void pidleput_locked(P* pp);
P* pidleget_locked();
void mput_locked(M* mp);
M* mget_locked();
// Gives pp to mp (neither holds the other) / takes mp's P away.
void acquirep(M* mp, P* pp);
P* releasep(M* mp);
// Runs pp (an idle P when null) on an idle or new M; spinning: the caller
// counted that M in Sched::nmspinning.
void startm(P* pp, bool spinning);
// The G returned from a syscall and no P is free: queues gp globally and
// parks the M (the caller holds the M, m_lock_enter; the switch carries it).
void exitsyscall_park(G* gp);
// Starts a kernel thread that is no M (sysmon), as an M's is started.
int os_thread_start(void* (*fn)(void*), void* arg);
// timer.cpp added a timer due at `when`: wakes the timer M if it sleeps
// past it.
void timer_m_notify(int64_t when);

// ---- syscall.cpp ------------------------------------------------------------

// Gives pp (just retaken, or released by an M) to an M if it has work, else
// to the idle list.
void handoffp(P* pp);
// newm queued an M for sysmon to start: makes sysmon's next round come soon.
void sysmon_wake_for_newm();

}  // namespace mnp
