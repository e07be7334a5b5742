// core/sched_internal.h — the scheduler's own interface between the files
// that make it up: sched.cpp (Gs, Ms, Ps, run queues, M sleep and wake-up),
// syscall.cpp (the syscall hand-off), sysmon.cpp, poke.cpp (the runtime's
// signal) and timer.cpp. What the rest of the runtime and interpose/ may
// call is in sched.h and poke.h; nothing else includes this header.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/futex.h"
#include "core/sched.h"

namespace mnp {

// ---- sched.cpp --------------------------------------------------------------

// The M's hold (M::locks, "Signals" in docs/ARCHITECTURE.md): while it is
// non-zero a handler of the program's that the kernel runs on this thread
// is held back, and raised again when it drops to 0 (m_signal_redeliver).
// Inline here for the wrapped-call fast path (syscall.cpp); Lock uses the
// out-of-line m_lock_enter/m_lock_exit (futex.h).
void m_signal_redeliver(M* mp);

inline void m_hold(M* mp) {
  mp->locks = mp->locks + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

// Holds the M that runs gp (gp is the caller) and returns it. G::mhold
// keeps handlers out while G::m is read, so the hold lands on the M the
// G is still on.
inline M* hold_m(G* gp) {
  gp->mhold = gp->mhold + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  M* mp = gp->m;
  if (mp) m_hold(mp);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  gp->mhold = gp->mhold - 1;
  return mp;
}

inline void m_release(M* mp) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  uint32_t n = mp->locks - 1;
  mp->locks = n;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (MNP_UNLIKELY(n == 0 && mp->sig_deferred != 0)) m_signal_redeliver(mp);
}

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
// parks the M (the caller holds the M, hold_m; the switch carries it).
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
// What entersyscall does to mp's P and to gp (Running, on mp with its P),
// also done by the runtime's signal handler on behalf of a G found blocked
// in code no wrapper covers (poke.cpp). Only on mp's own thread.
void mark_in_syscall(M* mp, G* gp);

// ---- sysmon.cpp -------------------------------------------------------------

// newm queued an M for sysmon to start: makes sysmon's next round come soon.
void sysmon_wake_for_newm();
// Ends sysmon's sleep (async-signal-safe).
void sysmon_wake();
// Non-zero while sysmon sleeps because every P is idle; whoever makes a P
// busy or enters a syscall clears it and wakes sysmon.
extern std::atomic<int32_t> g_sysmon_sleeping_long;
// Starting sysmon and installing the runtime's signal handler, and moving
// the runtime's signal (poke_signal_release), happen under this lock.
extern Lock g_sysmon_start_lock;

// ---- poke.cpp ---------------------------------------------------------------

// The handler of the runtime's signal is installed (it could be).
bool poke_enabled();
// At start-up (sysmon_init): this process's pid and MNP_SIGNAL.
void poke_init();
// In a child of fork (sysmon_after_fork): no send or exec of another
// thread's is in progress.
void poke_after_fork();
// Installs the runtime's signal handler, the first time only; the caller
// holds g_sysmon_start_lock (sysmon_ensure_slow).
void poke_install_locked();

}  // namespace mnp
