// core/poke.cpp — the runtime's signal: poke_handler and what it serves.
//
// One signal (MNP_SIGNAL, SIGURG by default), one handler (poke_handler),
// for everything the runtime must do on a given M's own thread:
//   - sysmon's pokes (tgkill, counted in M::pokes): a preemption request,
//     honoured at a safe point (core/preempt.h), or, for an M found asleep
//     in the kernel in code no wrapper covers, mark_in_syscall on its G's
//     behalf so that sysmon's next round retakes the P;
//   - marked requests (SI_QUEUE from this process with a value): a dump
//     (core/trace.h), run the program's handlers waiting for a G
//     (core/sigpend.h), end a sigwait with the runtime's EINTR, refresh a
//     mask after the signal moved;
//   - the program's own instances of the signal, passed to the action it
//     set (chain_to_user), or kept pending while its G blocks the signal.
// The handler runs with every signal blocked and finds its M by kernel tid,
// never through TLS (the FS base may belong to a G mid-switch).
//
// The signal is never blocked in the kernel (an M that blocked it could be
// neither preempted nor found blocked); a G's own mask holds it only in the
// G's view (core/sigmask.cpp). Sends pause around an exec, and the signal
// moves to a free real-time one when the program wants the old one queued
// (both below).
//
// Rejected: a signal of its own for each kind of request: every signal the
// runtime takes is one the program loses, and each would need the same care
// around exec, fork and masks. SIGURG is the default because its default
// action ignores it: an instance that reaches a program without a handler
// does nothing (Go's runtime preempts with it for the same reason).
#include <dlfcn.h>
#include <signal.h>
#include <ucontext.h>

#include <cerrno>
#include <cstring>

#include "core/base.h"
#include "core/cancel.h"
#include "core/gmem.h"
#include "core/poke.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/sched_internal.h"
#include "core/sigpend.h"
#include "core/tcb.h"
#include "core/trace.h"

namespace mnp {

namespace {

// siginfo value of the mask refresh after the runtime's signal moved
// (poke_signal_release).
constexpr int kMaskRefreshValue = 0x4d4e5052;
// si_value of sysmon's poke, a preemption request or a blocked-M look
// ("MNPK"): only a signal so marked is the runtime's.
constexpr int kPokeValue = 0x4d4e504b;
// A tracer (gdb, strace) is attached to the process (sysmon asks /proc,
// poke_set_traced).
constinit std::atomic<bool> g_traced{false};
// The runtime's signal (MNP_SIGNAL, or the one poke_signal_release moved
// to). Read anywhere, changed only under g_sysmon_start_lock.
MNP_START_DATA constinit std::atomic<int> g_poke_signal{SIGURG};
int poke_sig() { return g_poke_signal.load(std::memory_order_relaxed); }

// exec and the runtime's signal. Signals pending at a thread survive
// execve, and the new image has default actions: a poke still in flight
// when the program execs would be delivered to the new program (fatal if
// MNP_SIGNAL names a signal whose default action terminates). Senders and
// exec_prepare form a Dekker pair on these two counters: a sender announces
// itself in g_poke_inflight and sends only if no exec is pending; an exec
// announces itself in g_exec_pending and waits until no send is in flight,
// after which none can start, and then takes what is already pending.
//
// Only a thread of this process takes part. A vfork child (or any
// CLONE_VM child) runs in the parent's memory but is another process: its
// exec replaces only the child, so a count it left in g_exec_pending would
// stop every send of the parent's for good (no preemption, no blocked-M
// signal: CPython's subprocess, which vforks, then starved every G but one
// at 1 P). Such a child is told apart by its pid; the runtime's signal is
// never sent to it, so it has nothing to take either.
constinit std::atomic<int> g_exec_pending{0};
constinit std::atomic<int> g_poke_inflight{0};
MNP_START_DATA constinit std::atomic<long> g_own_pid{0};  // this process's pid (poke_init, poke_after_fork)
// Its real uid at the same moments, for the siginfo of the runtime's own
// signals (only the runtime's handler reads it).
MNP_START_DATA constinit std::atomic<long> g_own_uid{0};

// The pid a signal the runtime sent carries: this process's, cached (a
// system call each, 0.85 us on the VM without FSGSBASE; a poke cost three
// of them before). Before poke_init, asked.
long own_pid() {
  long pid = g_own_pid.load(std::memory_order_relaxed);
  return pid != 0 ? pid : raw_syscall(SYS_getpid);
}

// Sends the runtime's signal to an M with siginfo si (rt_tgsigqueueinfo).
// Returns the system call's result, -EAGAIN while an exec is pending.
long send_poke(long tid, siginfo_t* si) {
  g_poke_inflight.fetch_add(1, std::memory_order_seq_cst);
  long r = -EAGAIN;
  if (g_exec_pending.load(std::memory_order_seq_cst) == 0) {
    int sig = poke_sig();
    si->si_signo = sig;
    r = raw_syscall(SYS_rt_tgsigqueueinfo, own_pid(), tid, sig, reinterpret_cast<long>(si));
  }
  g_poke_inflight.fetch_sub(1, std::memory_order_release);
  return r;
}
constinit bool g_poke_enabled = false;

// The runtime's signal carrying `value` (SI_QUEUE from this process): a
// request to the handler on that M rather than a poke.
long send_marked(long tid, int value) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_code = SI_QUEUE;
  si.si_pid = static_cast<pid_t>(own_pid());
  si.si_uid = static_cast<uid_t>(g_own_uid.load(std::memory_order_relaxed));
  si.si_value.sival_int = value;
  return send_poke(tid, &si);
}

// The exec side of the Dekker pair above, also used to change the signal
// (poke_signal_release): from the return on, no send is in flight and none
// starts until sends_resume.
void sends_pause() {
  g_exec_pending.fetch_add(1, std::memory_order_seq_cst);
  while (g_poke_inflight.load(std::memory_order_seq_cst) != 0) raw_syscall(SYS_sched_yield);
}
void sends_resume() { g_exec_pending.fetch_sub(1, std::memory_order_seq_cst); }

// The program's action for the runtime's signal (SIG_DFL until it sets one).
constinit struct sigaction g_user_action = {};
using PokeUnwrapFn = void (*)(int, struct sigaction*);
MNP_START_DATA constinit PokeUnwrapFn g_poke_unwrap = nullptr;
constinit Lock g_user_action_lock;

// The M whose G waits in sigwait/sigtimedwait for sig (G::sigwait_bits),
// or null.
M* sigwaiter_m(int sig) {
  uint64_t bit = uint64_t{1} << (sig - 1);
  M* found = nullptr;
  gmem_peek_begin();  // a G may exit and be unmapped meanwhile
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp && !found; mp = mp->alllink) {
    G* g = mp->curg;
    if (g && !g->is_g0 && (g->sigwait_bits.load(std::memory_order_seq_cst) & bit)) found = mp;
  }
  gmem_peek_end();
  return found;
}

// An instance of the program's that the runtime keeps pending (for
// target, or for any G when null). No M blocks the runtime's signal, so
// the kernel may have given it to any thread rather than to the one whose
// sigwait waits for it; and it cannot be sent on there with its siginfo
// (the kernel takes a siginfo with si_code >= 0 only from the target
// thread itself). So the slot keeps it, and a sigwait already in the
// kernel is ended with the runtime's EINTR (kSigwaitKickValue), after
// which it takes the slot (interpose/signal.cpp). Its G publishes
// sigwait_bits before it looks at the slots, and this looks for it after
// putting the slot: one of the two sees the other.
void keep_pending(G* target, int sig, siginfo_t* si, const SigAct& act) {
  sigpend_put_for(target, sig, si, act);
  if (target) {
    // Sent to this thread: target is the G on it. In a sigwait, its kernel
    // call, interrupted by this handler, ends with EINTR: the runtime's.
    if (target->sigwait_bits.load(std::memory_order_seq_cst) & (uint64_t{1} << (sig - 1)))
      target->runtime_eintr.store(1, std::memory_order_relaxed);
    return;
  }
  // Untargeted: sigpend_put_for has sent the sigwait kick (poke_kick_sigwaiter).
}

// a names a handler (not SIG_DFL, SIG_IGN or none).
bool has_handler(const struct sigaction& a) {
  return (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction != nullptr : (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN);
}

void chain_to_user(int sig, siginfo_t* si, void* uc) {
  struct sigaction a = g_user_action;  // read without the lock: handler context
  bool has = has_handler(a);
  G* g = tls_g;
  SigAct act{reinterpret_cast<void*>(a.sa_sigaction), a.sa_flags, a.sa_mask};
  if (g && g->is_g0 && runtime_up) {
    // An M between Gs: for a G to run (sigpend.h). With no handler, kept
    // only when every G blocks it, as the kernel keeps a blocked signal
    // pending whatever its action (for a sigwait to take); else the G
    // the kernel would have picked ignores it.
    if (has || sig_blocked_by_all_gs(sig)) keep_pending(nullptr, sig, si, act);
    return;
  }
  if (g && runtime_up && g_blocks(g, sig)) {
    // The G blocks the runtime's signal (the kernel never does): pending
    // until it unblocks it or a sigwait takes it, for this G if it was
    // sent to this thread.
    keep_pending(si && si->si_code == SI_TKILL ? g : nullptr, sig, si, act);
    return;
  }
  // Counted like the trampoline's: it ends a masked call of this G's
  // (core/netpoll.h, CallMask).
  // And in G::in_handler, as the trampoline's (the stack below a park in
  // it may be live, and so may a malloc, core/mcache.h).
  bool counted = has && g && runtime_up && !g->is_g0;
  // The G's mask while the program's handler runs, as in the trampoline.
  auto* ucp = static_cast<ucontext_t*>(uc);
  sigset_t was;
  if (counted) uc_show_g_view(ucp, g->sigmask);
  uint64_t uc_was = sigset_bits(&ucp->uc_sigmask);
  if (counted) {
    g->handlers_run++;
    g->in_handler++;
    was = g_handler_mask_begin(g, &g->sigmask, sig, &a.sa_mask, a.sa_flags);
  }
  if (a.sa_flags & SA_SIGINFO) {
    if (a.sa_sigaction) a.sa_sigaction(sig, si, uc);
  } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
    a.sa_handler(sig);
  }
  if (counted) {
    g_handler_mask_end(g, was, uc_was, ucp);
    uc_hide_g_view(ucp);
    g->in_handler--;
  }
  // SIG_DFL of SIGURG is "ignore"; for another MNP_SIGNAL with a default
  // action that terminates, the program never asked for it: ignored too.
}

void refresh_released(ucontext_t* uc);

// Room a preemption's stack walk needs (libunwind's cursor is 1 KiB, its
// DWARF state several more), and what is left below g0's saved frame.
constexpr uintptr_t kWalkRoom = 32 * 1024;
constexpr uintptr_t kWalkBelowG0 = 512;
constexpr uintptr_t kGuardMargin = 64 * 1024;  // glibc's stack block starts with its guard
// A walk longer than this marks its G deep-stacked (G::deep_walk): sysmon
// then gives it longer slices, so walks stay a small share of its time
// (5% of a 2 ms slice).
constexpr int64_t kDeepWalkNs = 100 * 1000;

struct WalkCall {
  const ucontext_t* uc;
  Walk walk;
};

// The stack walk of a preemption request that found the G on its alternate
// stack, which may be small (Rust's: about 8 KiB): on the idle stack of the
// M's g0 instead, below the frame g0 left when it switched to a G. False
// (no walk) when that stack's bounds are unknown or it has no room.
// While it runs there no signal may reach this M on an alternate stack,
// which the kernel would take as free and whose top holds this handler's
// frame: the runtime's signal stays blocked (the handler's mask; the walk's
// sigprocmask calls are answered without the kernel, tls_unwinding), and
// glibc's 32 and 33 have no SA_ONSTACK.
Walk walk_on_g0_stack(M* mp, const ucontext_t* uc) {
  uintptr_t sp = mp->g0.ctx.sp;
  uintptr_t lo = reinterpret_cast<uintptr_t>(mp->g0.stack_lo), hi = lo + mp->g0.stack_size;
  if (!lo && mp->g0.tcb) {
    lo = reinterpret_cast<uintptr_t>(tcb_field<void*>(mp->g0.tcb, tcbo::kStackBlock));
    hi = lo + tcb_field<size_t>(mp->g0.tcb, tcbo::kStackBlockSize);
  }
  if (!sp || !lo || sp < lo + kWalkRoom + kWalkBelowG0 + kGuardMargin) return Walk::kUnsafe;
  // Interrupted on g0's own stack (a G's TCB loaded there, as glibc's
  // set*id broadcast does): g0 is live, and no G to preempt.
  uintptr_t rsp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  if (rsp >= lo && rsp < hi) return Walk::kUnsafe;
  WalkCall w{uc, Walk::kUnsafe};
  mnp_call_on_stack((sp - kWalkBelowG0) & ~uintptr_t{15},
                    [](void* a) {
                      auto* c = static_cast<WalkCall*>(a);
                      c->walk = preempt_walk(c->uc, nullptr);
                    },
                    &w);
  return w.walk;
}

// What the runtime's signal asks of this M (the top of this file). Runs on
// the signalled M's own thread. Finds the M by kernel tid, never through
// TLS (the FS base may belong to a G mid-switch).
void poke_serve(siginfo_t* si, void* ucv, RetHook* hook_out) {
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kDumpRequestValue) {
    // Sent to the process: any M may take it, inside a wrapped call too.
    if (M* self = m_by_tid(raw_gettid()); self && self->curg && !self->curg->is_g0)
      self->curg->runtime_eintr.store(1, std::memory_order_relaxed);
    trace_request_dump();
    sysmon_wake_from_signal();
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kSigwaitKickValue &&
      si->si_pid == static_cast<pid_t>(own_pid())) {
    // A slot waits for the sigwait this M's G is in (keep_pending): the
    // call ends with the runtime's EINTR and looks at the slots again.
    if (M* self = m_by_tid(raw_gettid()); self && self->curg && !self->curg->is_g0)
      self->curg->runtime_eintr.store(1, std::memory_order_relaxed);
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kMaskRefreshValue &&
      si->si_pid == static_cast<pid_t>(own_pid())) {
    refresh_released(static_cast<ucontext_t*>(ucv));
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kSigpendKickValue &&
      si->si_pid == static_cast<pid_t>(own_pid())) {
    // sysmon asks the G on this M to run handlers that arrived between Gs
    // (on g0 now: the slots stay, sysmon tries again). Not while the M is
    // inside the runtime (a Lock held, scheduling, switching Gs: futex.h):
    // a handler's sem_post would wait for a lock this very thread holds.
    // The slots stay for sysmon's next round.
    M* self = m_by_tid(raw_gettid());
    // A G in sigwait or sigsuspend: a slot waits for it (sig_send_to_g),
    // and the kernel call this ends ends with the runtime's EINTR, after
    // which it looks at the slots; without the flag, sigwaitinfo and
    // sigtimedwait gave the program that EINTR instead of its signal.
    if (self && self->curg && !self->curg->is_g0 && self->curg->sigwait_bits.load(std::memory_order_relaxed) != 0)
      self->curg->runtime_eintr.store(1, std::memory_order_relaxed);
    if (self && self->locks != 0) return;
    // Nor anywhere in the shim's own code, which may be half-way through
    // a change the handler would see or undo (a handler that parks moves
    // the G to another M under the feet of code that has its M and P in
    // hand).
    auto* uc = static_cast<ucontext_t*>(ucv);
    if (in_runtime_text(arch_uc_pc(uc))) return;
    int saved_errno = errno;
    G* g = get_user_g();
    uint32_t ran = g ? g->handlers_run : 0;
    // Read before the handlers: one may make a call of the few-threads
    // path of its own, which sets and clears the flag.
    uint32_t wait_call = g ? g->in_wait_call.load(std::memory_order_relaxed) : 0;
    uint8_t sig_ran = 0;
    if (g) {
      sig_ran = g->sig_ran;
      g->sig_ran = 0;
    }
    if (g && sigpend_any()) ret_hook_drop(g, uc);  // a handler may unwind from here
    sigpend_run(ucv, &uc->uc_sigmask);
    uint8_t ran_now = 0;
    if (g) {
      ran_now = g->sig_ran;
      g->sig_ran |= sig_ran;
    }
    // A handler run just before a poll-family wait of the few-threads path
    // enters the kernel, or while the kernel restarts it (woken for a
    // signal an idle M then took, it found none for this thread and makes
    // the call again): natively the handler would have ended the call.
    // Returning into the `syscall` instruction would sleep through it. A
    // read or write of that path ends so only for a handler without
    // SA_RESTART (one installed while the call was in progress, or past
    // the sigaction interposer: sysv_signal, a raw rt_sigaction); after
    // the others the kernel restarts it, as natively.
    if (g && g->handlers_run != ran && arch_uc_at_syscall(uc) &&
        (wait_call == kWaitCallPoll || (wait_call == kWaitCallRw && (ran_now & kSigRanNoRestart))))
      arch_uc_skip_syscall(uc, -EINTR);
    errno = saved_errno;
    return;
  }
  M* mp = m_by_tid(raw_gettid());
  // Not sent by sysmon (not marked as its poke, from this process): the
  // program's own signal, for its own action. Told by the mark alone: a
  // count of pokes outstanding went wrong when an M took a poke more than
  // kPokeStaleNs late (sysmon.cpp), just as sysmon sent the next, which
  // then reached the program's handler (gccgo: "malloc during signal",
  // "signal 23 received but handler not on signal stack").
  if (!si || si->si_code != SI_QUEUE || si->si_value.sival_int != kPokeValue ||
      si->si_pid != static_cast<pid_t>(own_pid())) {
    chain_to_user(si ? si->si_signo : poke_sig(), si, ucv);
    return;
  }
  if (!mp) return;
  if (mp->pokes.load(std::memory_order_relaxed) > 0) mp->pokes.fetch_sub(1, std::memory_order_relaxed);
  G* gp = mp->curg;
  if (!gp || gp->is_g0) return;
  // A poke inside this M's own stack walk (below): libunwind's
  // sigprocmask, taken for a foreign thread's, lets the runtime's signal
  // in again. A second walk here would end by putting tls_g back under the
  // first one's feet, whose later sigprocmask calls then rewrote the G's
  // own mask (CPython's main thread ended up blocking every signal, and
  // its multiprocessing forkserver never saw a SIGCHLD). The first walk
  // does the work.
  if (mp->poke_walking) return;
  if (gp->syscall_depth != 0 || !mp->p) {
    // Inside a wrapped call (sysmon sampled the P just before it entered):
    // the call may now fail with EINTR that the program never caused.
    gp->runtime_eintr.store(1, std::memory_order_relaxed);
    return;
  }
  if (arch_get_fs() != reinterpret_cast<uintptr_t>(gp->tcb)) return;  // mid-switch
  // The runtime hid the G: it is making a kernel thread of its own from
  // the G's stack (real_runtime_thread_create), foreign code may be running.
  if (tls_g != gp) return;
  auto* uc = static_cast<ucontext_t*>(ucv);
  if (in_runtime_text(arch_uc_pc(uc))) return;
  // Interrupted inside a system call (about to restart it, or just returned
  // -EINTR from it): a blocked-M detection; otherwise user code.
  if (!arch_uc_in_syscall(uc)) {
    // Running user code: a preemption request, honoured only at a safe point.
    // Taken once: the blocked-M signals that keep coming while the M waits
    // for a CPU must not each pay for a stack walk (they could keep the M
    // in this handler for good).
    uint32_t want = gp->preempt.load(std::memory_order_relaxed);
    if (want != kPreemptAsync && want != kPreemptWakeAsync) return;
    uint32_t taken = want == kPreemptAsync ? kPreemptMarked : kPreemptWake;
    if (!preempt_enabled() || !gp->preempt.compare_exchange_strong(want, taken, std::memory_order_relaxed)) return;
    // Runtime code up the stack holding the M (a Lock, hold_m) that called
    // the program: the walk passes such call-outs, the switch must not.
    if (mp->locks != 0 || gp->mhold != 0) return;
    // libunwind validates addresses with mincore and a pipe: under a
    // seccomp filter that may trap them, a trap here, where every signal
    // is blocked, would end the process (core/base.h).
    if (preempt_off_under_seccomp()) return;
    // On the G's alternate signal stack (poke_action), which may be small,
    // no switch is made from here: at a safe point the G goes on running
    // without its P instead, as after a call no wrapper covers (sysmon's
    // next round hands the P to another M, and the G takes one back at its
    // next call into the runtime). Only at a safe point, as for a switch:
    // code of libc's or the runtime's on the stack may count on keeping
    // the P; the walk then runs on g0's idle stack, as the alternate stack
    // may be small.
    // Told by where this handler runs: within the alternate stack the
    // kernel recorded in the context, or within the G's own (a poke nested
    // in a handler on a stack enabled with SS_AUTODISARM, which the kernel
    // disarmed: its context records none).
    char here;
    auto alt_lo = static_cast<char*>(uc->uc_stack.ss_sp);
    auto here_at = reinterpret_cast<uintptr_t>(&here);
    bool on_alt = (uc->uc_stack.ss_size != 0 && &here >= alt_lo && &here < alt_lo + uc->uc_stack.ss_size) ||
                  (gp->own_altstack && here_at >= gp->altstack_lo && here_at < gp->altstack_hi);
    int saved_errno = errno;
    // The walk (libunwind) calls open, read, write, sigprocmask and
    // syscall: with tls_g cleared, the shim's interposers take this thread
    // for one that is no G and call glibc at once. As a G, a read could
    // hand the P off or park the G inside this handler, and the G came back
    // without a P (preempt_switch on a null P: tree at 2 Ps about 1 run in
    // 10; mem-threads with jemalloc preloaded 1 in 3). The walk must leave
    // the G as it found it, Running on this M with a P; the check after it
    // stays, as skipping a preemption is always allowed.
    mp->poke_walking = true;
    tls_g = nullptr;
    tls_unwinding = true;
    int64_t walk_start = nanotime();
    RetHook hook;
    Walk walk = on_alt ? walk_on_g0_stack(mp, uc) : preempt_walk(uc, &hook);
    RetHook* out = hook_out;
    gp->deep_walk.store(nanotime() - walk_start > kDeepWalkNs, std::memory_order_relaxed);
    tls_unwinding = false;
    tls_g = gp;
    mp->poke_walking = false;
    if (walk != Walk::kUnsafe && gp->m == mp && mp->p && gp->status.load(std::memory_order_relaxed) == kGRunning) {
      // Stopped in code no unwinder can read (a JIT's: qemu's TCG, where a
      // vCPU thread runs generated code for good and its other threads
      // never got a P): the G runs on without its P, as after a call no
      // wrapper covers. Its PC is outside libc and the runtime, so no
      // malloc is half-way through the P's cache (mcache.h; libc calls no
      // program code from inside malloc), and runtime code that called the
      // program holds the M (checked above).
      if (on_alt || walk == Walk::kUnreadable) {
        mark_in_syscall(mp, gp);
      } else if (walk == Walk::kAtReturn) {
        // In libc just past a system call (a loop that calls getppid or
        // write between its computations takes nearly every signal there:
        // it enters the kernel more often than the signal's interrupt
        // comes): the G stops where that function returns, its mark kept.
        // Installed by poke_handler, after the cancellation point: an
        // unwind from here must find the function's own return address.
        *out = hook;
      } else {
        raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&uc->uc_sigmask), 0, 8);
        preempt_switch();
      }
    }
    errno = saved_errno;
    return;
  }
  // Blocked in a call no wrapper covers, unless the G is on its way out:
  // one past ensure_p, its M held, was marked so in a call outside the
  // shim's text, and its last switch found it in a system call (stunnel
  // under load: "casgstatus: G from running to dead, but it is syscall").
  // It waits with its P. (Not for every held M: runtime code that holds a
  // Lock across a call into glibc, unwind_get's dlopen, may wait there for
  // a G that needs this P.)
  if (gp->exiting) return;
  mark_in_syscall(mp, gp);
}

void poke_handler(int, siginfo_t* si, void* ucv) {
  RetHook hook;
  poke_serve(si, ucv, &hook);
  // About to return to the interrupted context: the next point at which its
  // G may act on an asynchronous cancellation that found it in this
  // handler or preempted (core/cancel.h; glibc's sigfillset leaves
  // SIGCANCEL out of this handler's mask).
  if (M* mp = m_by_tid(raw_gettid()); mp && mp->curg && !mp->curg->is_g0) {
    cancel_async_point(mp->curg, static_cast<ucontext_t*>(ucv));
    if (hook.slot) ret_hook_install(mp->curg, hook, static_cast<ucontext_t*>(ucv));
  }
}

// The kernel action of the runtime's signal.
struct sigaction poke_action() {
  struct sigaction sa = {};
  sa.sa_sigaction = poke_handler;
  // SA_ONSTACK: a G that enabled an alternate signal stack of its own (put
  // on whatever M runs it, core/altstack.h) may run code whose stack
  // pointer is no stack: Erlang's JIT keeps each Erlang process's stack,
  // next to its heap, in %rsp, and its threads take every signal on their
  // alternate stacks. A frame pushed there at %rsp overwrote the heap
  // (beam.smp died of "bad tag" or SIGSEGV in one run of two at 2 Ps).
  // Where no alternate stack is enabled the flag does nothing; one that
  // several threads enable is given to the kernel for one of them only
  // (interpose/wire.cpp, altstack_call). A preemption never switches away
  // on an alternate stack (poke_serve): the scheduler's code would run on
  // it, and it may be small (Rust's: about 8 KiB).
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&sa.sa_mask);
  return sa;
}

using SigactionFn = int(int, const struct sigaction*, struct sigaction*);
// The libc sigaction, not the shim's own interposer of it.
SigactionFn* libc_sigaction() { return reinterpret_cast<SigactionFn*>(dlvsym(RTLD_NEXT, "sigaction", "GLIBC_2.2.5")); }

// ---- Giving the runtime's signal back (poke_signal_release) ---------------
//
// PostgreSQL 15 blocks SIGURG, the default runtime signal, and takes it from
// a signalfd in its epoll set. The runtime's signal is never blocked in the
// kernel (an M that blocked it could be neither preempted nor found
// blocked), so the program's SIGURG was always delivered to the runtime's
// handler, never pending in the kernel, and the signalfd never became
// readable: backends waited for their latches for good. A program that asks
// for the signal as a queued one (a signalfd or a sigwait set with it) has
// the better claim: the runtime moves to a real-time signal nobody uses,
// and the old one becomes an ordinary signal of the program's, blocked in
// the kernel wherever its G blocks it.
//
// Before the handler is installed (lazy start-up: PostgreSQL's postmaster
// makes its signalfd long before any second thread) the move is just a new
// number, inherited by forked children. After it: sends pause as around an
// exec, the handler goes on the new signal, the number and the open bit
// change, and the program's recorded action goes back on the old signal.
// Ms other than the caller load the new kernel masks at their next G
// switch; an idle M (asleep, its mask computed before) is sent a refresh
// that blocks the old signal where every G blocks it, so that the kernel
// keeps a process-directed instance pending instead of discarding it there;
// the release waits for those refreshes (bounded) before it returns.
// A poke already queued on the old signal when it moves reaches the
// program's action once (SIGURG's default discards it; a handler sees a
// spurious SIGURG, as a program must expect from SIGURG anyway).
MNP_START_DATA constinit bool g_poke_moved = false;  // (g_sysmon_start_lock)
constinit std::atomic<uint64_t> g_released_bits{0};  // signals the runtime gave back
using PokeRewrapFn = void (*)(int, const struct sigaction*);
MNP_START_DATA constinit PokeRewrapFn g_poke_rewrap = nullptr;

// In the refresh signal's handler on an M: the given-back signals its mask
// should block now (its G's, or what every G blocks when it has none) are
// added to the mask sigreturn restores. Only added: a block that comes
// too early holds a signal pending a moment, one missing loses it.
// Refreshes done, for poke_signal_release to wait on. Counted inside the
// handler, whose mask blocks every signal: the old one stays blocked from
// here through sigreturn, which installs the refreshed mask.
constinit std::atomic<uint32_t> g_refresh_acks{0};

void refresh_released(ucontext_t* uc) {
  if (M* mp = m_by_tid(raw_gettid())) {
    uint64_t rel = g_released_bits.load(std::memory_order_relaxed);
    G* g = mp->curg;
    // A wrapped call of g's it interrupts ends with the runtime's EINTR.
    if (g && !g->is_g0) g->runtime_eintr.store(1, std::memory_order_relaxed);
    uint64_t want = (g && !g->is_g0 ? g->kmask : idle_kmask()) & rel;
    if (want) {
      uc->uc_sigmask.__val[0] |= want;
      if (mp->kmask != kKmaskUnknown) mp->kmask |= want;
    }
  }
  g_refresh_acks.fetch_add(1, std::memory_order_release);
}

// A real-time signal the program has no use for: default action, not
// among `avoid`; 0 if there is none. A G's mask may hold it (programs block
// everything while they set up): the G keeps the bit in its view, as for
// SIGURG, and the kernel never blocks it.
int free_rt_signal(SigactionFn* sa_fn, uint64_t avoid) {
  for (int sig = 64; sig > 34; sig--) {
    if ((avoid >> (sig - 1)) & 1) continue;
    struct sigaction o = {};
    if (sa_fn(sig, nullptr, &o) != 0) continue;
    if (!(o.sa_flags & SA_SIGINFO) && o.sa_handler == SIG_DFL) return sig;
    // The program's SIG_DFL, guarded while every G blocks it (sched.h).
    if (g_dfl_guarded.load(std::memory_order_acquire) & (uint64_t{1} << (sig - 1))) return sig;
  }
  return 0;
}

// The handler is installed once (poke_install_locked); the kernel's action,
// and so this flag, survives fork. (g_sysmon_start_lock)
constinit bool g_poke_installed = false;

}  // namespace

MNP_STARTUP void set_poke_unwrap_hook(void (*hook)(int, struct sigaction*)) { g_poke_unwrap = hook; }

MNP_STARTUP bool exec_prepare() {
  if (raw_syscall(SYS_getpid) != g_own_pid.load(std::memory_order_relaxed)) return false;  // a vfork child
  sends_pause();
  if (!g_poke_enabled) return true;
  // Take the runtime's signals already pending for this thread. A program's
  // own instance pending for the whole process is taken too: the new image
  // would see it with the default action, which for SIGURG discards it.
  uint64_t bit = uint64_t{1} << (poke_sig() - 1);
  uint64_t old = 0;
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&bit), reinterpret_cast<long>(&old), 8);
  struct timespec zero = {0, 0};
  siginfo_t si;
  M* mp = m_by_tid(raw_gettid());
  while (raw_syscall(SYS_rt_sigtimedwait, reinterpret_cast<long>(&bit), reinterpret_cast<long>(&si),
                     reinterpret_cast<long>(&zero), 8) > 0) {
    if (mp && mp->pokes.load(std::memory_order_relaxed) > 0) mp->pokes.fetch_sub(1, std::memory_order_relaxed);
  }
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, 8);
  return true;
}

long send_runtime_poke(long tid) { return send_marked(tid, kPokeValue); }

MNP_STARTUP void poke_set_traced(bool traced) { store_changed(g_traced, traced); }

bool poke_traced() { return g_traced.load(std::memory_order_relaxed); }

long send_runtime_marked(long tid, int value) { return send_marked(tid, value); }

void poke_kick_sigwaiter(int sig) {
  if (!g_poke_enabled) return;
  if (M* w = sigwaiter_m(sig)) send_marked(w->tid, kSigwaitKickValue);
}

MNP_STARTUP void exec_abandon() { sends_resume(); }

bool poke_signal_is(int sig) { return g_poke_enabled && sig == poke_sig(); }

bool poke_signal_reserved(int sig) { return sig == poke_sig(); }

int poke_signal_number() { return g_poke_enabled ? poke_sig() : -1; }

void poke_user_action(const struct sigaction* act, struct sigaction* old) {
  LockGuard lk(g_user_action_lock);
  if (old) *old = g_user_action;
  if (act) {
    g_user_action = *act;
    sig_note_norestart(poke_sig(), has_handler(*act) && !(act->sa_flags & SA_RESTART));
  }
}

bool poke_signal_release(uint64_t avoid) {
  if (!((avoid >> (poke_sig() - 1)) & 1)) return true;
  ErrnoKeeper keep_errno;
  LockGuard lk(g_sysmon_start_lock);
  int old = poke_sig();
  if (!((avoid >> (old - 1)) & 1)) return true;
  SigactionFn* sa_fn = libc_sigaction();
  int sig = sa_fn ? free_rt_signal(sa_fn, avoid | g_released_bits.load(std::memory_order_relaxed)) : 0;
  if (sig == 0) {
    raw_print("the program takes the runtime's signal as a queued one and no real-time signal is free; set MNP_SIGNAL");
    return false;
  }
  if (!g_poke_installed) {
    g_poke_signal.store(sig, std::memory_order_relaxed);
    g_poke_moved = true;
    return true;
  }
  if (!g_poke_enabled) return true;  // the handler could not be installed: nothing to give back
  sends_pause();
  struct sigaction sa = poke_action();
  if (sa_fn(sig, &sa, nullptr) != 0) {
    sends_resume();
    return false;
  }
  g_dfl_guarded.fetch_and(~(uint64_t{1} << (sig - 1)), std::memory_order_acq_rel);
  struct sigaction user;
  {
    LockGuard ua(g_user_action_lock);
    user = g_user_action;
    g_user_action = {};  // the new signal's: SIG_DFL (free_rt_signal)
  }
  g_released_bits.fetch_or(uint64_t{1} << (old - 1), std::memory_order_relaxed);
  g_poke_signal.store(sig, std::memory_order_seq_cst);
  g_kmask_open.store(uint64_t{1} << (sig - 1), std::memory_order_seq_cst);
  g_poke_moved = true;
  if (g_poke_rewrap) g_poke_rewrap(old, &user);
  else sa_fn(old, &user, nullptr);
  sends_resume();
  G* self = get_user_g();
  if (self) g_load_kmask(self);
  int me = raw_gettid();
  uint32_t acks = g_refresh_acks.load(std::memory_order_acquire), sent = 0;
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink)
    if (mp->tid != 0 && mp->tid != me && send_marked(mp->tid, kMaskRefreshValue) == 0) sent++;
  // The program's call returns once the other Ms have refreshed: until
  // then one of them still lets the old signal in, and the kernel gives it
  // an instance sent to the process, which the program's action (SIG_IGN
  // of SIGURG, typically) then discards where natively it stays pending
  // for the program's signalfd or sigwait (sig_urg_signalfd late lost its
  // first signal once). Bounded: an M that is exiting never answers.
  int64_t until = nanotime() + 20 * 1000 * 1000;
  while (g_refresh_acks.load(std::memory_order_acquire) - acks < sent && nanotime() < until) raw_sleep_ns(20 * 1000);
  return true;
}

MNP_STARTUP void set_poke_rewrap_hook(void (*hook)(int, const struct sigaction*)) { g_poke_rewrap = hook; }

bool poke_enabled() { return g_poke_enabled; }

MNP_STARTUP void poke_init() {
  g_own_pid.store(raw_syscall(SYS_getpid), std::memory_order_relaxed);
  g_own_uid.store(raw_syscall(SYS_getuid), std::memory_order_relaxed);
  if (!g_poke_moved) g_poke_signal.store(config().signal, std::memory_order_relaxed);
}

MNP_STARTUP void poke_after_fork() {
  // The child's only thread is the one that forked: a signal another
  // thread was sending, or an exec another thread was preparing, at the
  // moment of the fork is none of the child's. Left counted, the child's
  // exec_prepare waited for ever for a send that no thread would finish
  // (bash under the shim, spinning before its execve).
  store_changed(g_poke_inflight, 0);
  store_changed(g_exec_pending, 0);
  g_own_pid.store(raw_syscall(SYS_getpid), std::memory_order_relaxed);
  g_own_uid.store(raw_syscall(SYS_getuid), std::memory_order_relaxed);
}

void poke_install_locked() {
  if (g_poke_installed) return;
  g_poke_installed = true;
  SigactionFn* real_sigaction = libc_sigaction();
  struct sigaction old = {};
  int sig = poke_sig();
  if (real_sigaction && real_sigaction(sig, nullptr, &old) == 0) {
    // The program (or a constructor) may already have set one: keep it
    // (the program's own, not the trampoline interpose/signal.cpp runs it
    // through).
    if (g_poke_unwrap) g_poke_unwrap(sig, &old);
    g_user_action = old;
    struct sigaction sa = poke_action();
    g_poke_enabled = real_sigaction(sig, &sa, nullptr) == 0;
    g_dfl_guarded.fetch_and(~(uint64_t{1} << (sig - 1)), std::memory_order_acq_rel);
    // The G running now (the process's only one: the main G, or a fork
    // child's) may have blocked the signal while it was not yet the
    // runtime's: its kernel mask never blocks it from now on (sigmask.cpp).
    if (g_poke_enabled) g_kmask_open.store(uint64_t{1} << (sig - 1), std::memory_order_relaxed);
    if (G* g = get_user_g(); g && g_poke_enabled) g_load_kmask(g);
  }
}

}  // namespace mnp
