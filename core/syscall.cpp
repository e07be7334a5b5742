// core/syscall.cpp — entersyscall/exitsyscall and the P hand-off.
//
// A G about to block in the kernel keeps its P but marks it kPSyscall
// (entersyscall): no lock, one store. If the call returns quickly the G takes
// the P back with one CAS (exitsyscall fast path). If it does not, sysmon
// notices the P stayed in the same syscall for a whole round, CASes it to
// kPIdle and hands it to another M (retake + handoff), so the P's queued Gs
// keep running. The returning G then finds its P gone: it takes any idle P,
// or queues itself on the global run queue and its M goes idle.
//
// Rejected: handing the P off on every blocking call (a futex wake and a
// thread switch per read(), even when the read does not block), and no
// hand-off at all (one blocked read stalls every G queued behind it).
//
// sysmon's side of the hand-off (retake, the detection of calls no wrapper
// covers) is in core/sysmon.cpp; the runtime's signal, through which that
// detection marks a G as in a syscall, in core/poke.cpp.
#include "core/base.h"
#include "core/cpuclock.h"
#include "core/mcache.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/sched_internal.h"

namespace mnp {

void handoffp(P* pp) {
  if (!pp->runq.empty() || sched.runq_size.load(std::memory_order_relaxed) > 0 ||
      pp->timers.when0.load(std::memory_order_relaxed) != kNever) {
    startm(pp, false);
    return;
  }
  // No local work: if nobody is spinning or idle, an M should look around.
  int32_t zero = 0;
  if (sched.nmspinning.load() + sched.npidle.load() == 0 && sched.nmspinning.compare_exchange_strong(zero, 1)) {
    startm(pp, true);
    return;
  }
  LockGuard lk(sched.lock);
  pidleput_locked(pp);
}

namespace {
// What entersyscall does to the P and the G, also done by the signal handler
// on behalf of a G found blocked in uncovered code. Only this M (or its own
// signal handler, on this very thread) writes syscalltick: a plain
// increment, no locked read-modify-write.
[[gnu::always_inline]] inline void mark(M* mp, G* gp) {
  P* pp = mp->p;
  uint32_t tick = pp->syscalltick.load(std::memory_order_relaxed) + 1;
  pp->syscalltick.store(tick, std::memory_order_relaxed);
  mp->syscalltick = tick;
  mp->oldp = pp;
  mp->p = nullptr;
  pp->m = nullptr;
  mcache_enter_call(gp, pp);
  casgstatus(gp, kGRunning, kGSyscall);
  pp->status.store(kPSyscall, std::memory_order_release);
}
}  // namespace

void mark_in_syscall(M* mp, G* gp) { mark(mp, gp); }

namespace {
void sysmon_wake_if_long() {
  if (MNP_UNLIKELY(g_sysmon_sleeping_long.load(std::memory_order_relaxed)) &&
      g_sysmon_sleeping_long.exchange(0, std::memory_order_acq_rel))
    sysmon_wake();
}

// Marks gp (depth 0) in a call of nesting depth `depth`. The depth and the
// P's state change together with the M held (hold_m), so a handler of the
// program's never finds one changed and not the other (handler_begin reads
// the depth to decide whether to take the P back). This is the slow path:
// gp lost its P in code no wrapper covers and takes one back first, maybe
// more than once.
MNP_NOINLINE void enter_marked(G* gp, int depth) {
  for (;;) {
    if (MNP_UNLIKELY(!gp->m->p)) exitsyscall_now(gp);
    M* mp = hold_m(gp);
    if (MNP_LIKELY(mp->p != nullptr)) {
      gp->syscall_depth = depth;
      mark(mp, gp);
      m_release(mp);
      break;
    }
    m_release(mp);
  }
  sysmon_wake_if_long();
}

// exitsyscall_now with the M held by the caller (hold_m): released here, or
// carried by the switch of exitsyscall_park.
void exitsyscall_now_held(G* gp) {
  if (exitsyscall_fast(gp)) {
    m_release(gp->m);
    return;
  }
  exitsyscall_park(gp);
}

// What a P taken back by the fast path's CAS may need besides: the call
// lasted a sysmon round (the M's CPU clock no longer follows wall time since
// its base, cpuclock.cpp; shorter sleeps stay within the estimate's 1 ms),
// or another M's G marked the P after a retake, whose call this M has just
// taken it from, as a retake would (M::syscalltick).
MNP_NOINLINE void exit_took_back(G* gp, M* mp, P* pp) {
  if (pp->syscall_long.load(std::memory_order_relaxed)) {
    pp->syscall_long.store(false, std::memory_order_relaxed);
    cpu_stale(mp);
  }
  if (pp->syscalltick.load(std::memory_order_relaxed) != mp->syscalltick) mcache_took_back(gp, pp);
}

// gp's M has just won its old P back (the kPSyscall -> kPRunning CAS).
[[gnu::always_inline]] inline void took_p_back(G* gp, M* mp, P* pp) {
  mp->oldp = nullptr;
  pp->m = mp;
  mp->p = pp;
  if (MNP_UNLIKELY(pp->syscall_long.load(std::memory_order_relaxed) ||
                   pp->syscalltick.load(std::memory_order_relaxed) != mp->syscalltick))
    exit_took_back(gp, mp, pp);
  casgstatus(gp, kGSyscall, kGRunning);
}
}  // namespace

void entersyscall() {
  G* gp = running_user_g();
  if (!gp) return;
  entersyscall_g(gp);
}

// The whole of the usual case in one frame: no nesting, the P still held.
// Wrapped calls that never block pay it twice per call (with exitsyscall_g),
// so what is rare goes out of line.
void entersyscall_g(G* gp) {
  gp->runtime_eintr.store(0, std::memory_order_relaxed);
  // A wrapped call inside another: the outer one already gave the P up.
  if (MNP_UNLIKELY(gp->syscall_depth != 0)) {
    gp->syscall_depth++;
    return;
  }
  M* mp = hold_m(gp);
  if (MNP_UNLIKELY(mp->p == nullptr)) {  // lost it in uncovered code
    m_release(mp);
    enter_marked(gp, 1);
    return;
  }
  gp->syscall_depth = 1;
  mark(mp, gp);
  m_release(mp);
  sysmon_wake_if_long();
}

int handler_begin(G* gp) {
  int depth = gp->syscall_depth;
  if (depth == 0) return 0;
  hold_m(gp);
  gp->syscall_depth = 0;
  exitsyscall_now_held(gp);
  return depth;
}

void handler_end(G* gp, int depth) {
  if (depth != 0) enter_marked(gp, depth);
}

namespace {
// Gives away the P of gp, just marked as in a syscall of depth 1. Held from
// the CAS until the P has a new owner: a handler of the program's in
// between (handler_begin takes a P for it) found no P — this one, kPIdle,
// is on no list yet — and queued the G, while the P waited for the
// hand-off that only the queued G would make (sigsuspend at one P hung
// so). to_idle (entersyscall_wait): straight to the idle list unless a G
// is queued anywhere or the P has timers; handoffp would also start a
// spinning M whenever no P is idle, to look for work nobody saw, and a G
// readied later finds an idle P through wakep.
void give_p(G* gp, bool to_idle) {
  m_lock_enter();
  P* pp = gp->m->oldp;
  uint32_t s = kPSyscall;
  if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) {
    mcache_taken(pp);
    if (to_idle && !queued_anywhere() && pp->timers.when0.load(std::memory_order_relaxed) == kNever) {
      LockGuard lk(sched.lock);
      pidleput_locked(pp);
    } else {
      handoffp(pp);
    }
  }
  m_lock_exit();
}
}  // namespace

void entersyscall_block() {
  G* gp = running_user_g();
  if (!gp) return;
  entersyscall_block_g(gp);
}

void entersyscall_block_g(G* gp) {
  // The process's only G on its only M (sched.h, wait_direct): nothing
  // else could use the P, and handing it off started an M and sysmon for
  // nothing; a thread created meanwhile brings sysmon, which retakes it.
  // (setpriv's getpwnam did so at 1 P before it changed its credentials;
  // the two threads without them made glibc's setresgid abort.)
  bool alone = wait_direct(gp);
  entersyscall_g(gp);
  if (!alone && gp->syscall_depth == 1) give_p(gp, false);
}

void entersyscall_wait() {
  G* gp = running_user_g();
  if (!gp) return;
  entersyscall_wait_g(gp);
}

void entersyscall_wait_g(G* gp) {
  entersyscall_g(gp);
  if (gp->syscall_depth == 1) give_p(gp, true);
}

bool syscall_eintr_was_ours(uint32_t handlers_before) {
  G* gp = get_user_g();
  if (!gp || gp->runtime_eintr.exchange(0, std::memory_order_relaxed) == 0) return false;
  // A handler of the program's that ran during the call (the kernel ran it
  // on the same return, or a kick ran it from a slot) owns the EINTR as
  // well: natively the call would have ended for it. Made again, a
  // sigsuspend slept through the signal it was waiting for (Boehm GC's
  // restart signal: Guile's world stayed stopped).
  return gp->handlers_run == handlers_before;
}

void exitsyscall() {
  G* gp = running_user_g();
  if (!gp) return;
  exitsyscall_g(gp);
}

// As entersyscall_g: the usual case (depth 1, the P not retaken) in one
// frame, the CAS of exitsyscall_fast inline.
void exitsyscall_g(G* gp) {
  int depth = gp->syscall_depth;
  if (MNP_UNLIKELY(depth != 1)) {
    if (depth > 1) gp->syscall_depth = depth - 1;
    return;  // 0: entered before the runtime was up
  }
  M* mp = hold_m(gp);  // as in entersyscall_g
  gp->syscall_depth = 0;
  P* pp = mp->oldp;
  uint32_t s = kPSyscall;
  if (MNP_LIKELY(pp->status.compare_exchange_strong(s, kPRunning, std::memory_order_acq_rel))) {
    took_p_back(gp, mp, pp);
    m_release(mp);
  } else {
    exitsyscall_now_held(gp);  // retaken: exitsyscall_fast looks again
  }
  // A slice that ended during the call ends on its way back.
  if (MNP_UNLIKELY(gp->preempt.load(std::memory_order_relaxed) != 0)) preempt_check();
}

namespace {
// An idle P for an M whose P was retaken during its call, or null.
P* exitsyscallfast_pidle() {
  if (sched.npidle.load(std::memory_order_relaxed) == 0) return nullptr;
  LockGuard lk(sched.lock);
  return pidleget_locked();
}
}  // namespace

bool exitsyscall_fast(G* gp) {
  M* mp = gp->m;
  P* pp = mp->oldp;
  uint32_t s = kPSyscall;
  if (MNP_LIKELY(pp->status.compare_exchange_strong(s, kPRunning, std::memory_order_acq_rel))) {
    took_p_back(gp, mp, pp);
    return true;
  }
  mp->oldp = nullptr;
  // Retaken: any idle P will do. The call lasted a sysmon round at least.
  cpu_stale(mp);
  mcache_lost_p(gp);
  if (P* p2 = exitsyscallfast_pidle()) {
    acquirep(mp, p2);
    mcache_bind(gp, p2);
    casgstatus(gp, kGSyscall, kGRunning);
    return true;
  }
  return false;
}

void exitsyscall_now(G* gp) {
  M* mp = hold_m(gp);
  // The caller saw no P, without a hold: a handler of the program's that
  // ran since then may have taken one back itself, and the mark with it
  // (M::oldp is null then). Seen as a crash in exitsyscall_fast:
  // malloc_cache.c's churners, blocked in malloc's lock (uncovered) and
  // so without a P, ran a SIGALRM handler that parked in poll on their way
  // into sched_yield, about 1 run in 40 at 2 Ps.
  if (MNP_UNLIKELY(mp->p != nullptr)) {
    m_release(mp);
    return;
  }
  exitsyscall_now_held(gp);
}

}  // namespace mnp
