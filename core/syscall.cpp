// core/syscall.cpp — entersyscall/exitsyscall and sysmon.
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
// Calls no wrapper covers (glibc-internal lock waits, libgomp's inline
// `syscall` futex waits) are found by sysmon too: a P whose schedtick has not
// moved for a round while its M's thread CPU clock has not moved either is
// held by an M asleep in the kernel. sysmon signals that M (MNP_SIGNAL,
// SIGURG by default); the handler checks that the M was really interrupted
// in a system call instruction outside mnpthread's own code and then does
// what entersyscall would have done, so the next round retakes the P as for
// any syscall. The G, once the call returns, runs on without a P until its
// next scheduling point, where ensure_p() takes one back.
//
// sysmon also starts the threads of Ms that a wired M needs (newm_drain): a
// thread it creates carries no G's kernel-thread state.
//
// sysmon is a kernel thread without a P, started with the runtime's signal
// handler on first need (sysmon_ensure: a second G or M, a first park, a
// first wiring for inherited state), so a one-thread process that never
// waits has neither. It sleeps 20 us between rounds,
// doubling up to 10 ms after 50 rounds with nothing to do, and entersyscall
// wakes it when it sleeps long, so a blocked call is noticed within ~20 us.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/cancel.h"
#include "core/base.h"
#include "core/cpuclock.h"
#include "core/netpoll.h"
#include "core/preempt.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "core/sched_internal.h"
#include "core/sema.h"
#include "core/sigpend.h"
#include "core/trace.h"

// First byte of this object and end of its text (set by the linker).
extern "C" const char __ehdr_start[] __attribute__((visibility("hidden")));
extern "C" const char __etext[] __attribute__((visibility("hidden")));

namespace mnp {

namespace {

constexpr int64_t kSysmonMinNs = 20 * 1000;
constexpr int64_t kSysmonMaxNs = 10 * 1000 * 1000;
constexpr int64_t kBusyMaxNs = 2 * 1000 * 1000;
constexpr int64_t kWatchNs = 5 * 1000 * 1000;  // sema_watch_scan at most this often
// sysmon's long sleep: a futex word any number of wakers may set (unlike a
// Note, which allows exactly one wake-up per sleep).
constinit std::atomic<uint32_t> g_sysmon_wake{0};
void sysmon_wake() {
  if (g_sysmon_wake.exchange(1, std::memory_order_release) == 0) futex_wake(&g_sysmon_wake, 1);
}
void sysmon_sleep(int64_t ns) {
  struct timespec ts = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  if (g_sysmon_wake.load(std::memory_order_acquire) == 0) futex_wait(&g_sysmon_wake, 0, ns == kNever ? nullptr : &ts);
  g_sysmon_wake.store(0, std::memory_order_relaxed);
}
constinit std::atomic<int32_t> g_sysmon_sleeping_long{0};

}  // namespace

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
void mark_in_syscall(M* mp, G* gp) {
  P* pp = mp->p;
  pp->syscalltick.store(pp->syscalltick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  mp->oldp = pp;
  mp->p = nullptr;
  pp->m = nullptr;
  casgstatus(gp, kGRunning, kGSyscall);
  pp->status.store(kPSyscall, std::memory_order_release);
}

constexpr int64_t kPreemptNs = 10 * 1000 * 1000;
// A real-time G's time slice (ksched.h): the kernel's default real-time
// bandwidth (sched_rt_runtime_us, 950 ms of each second), after which the
// kernel would run the ordinary threads of a CPU its real-time threads keep
// busy.
constexpr int64_t kRtSliceNs = 950 * 1000 * 1000;
constexpr int64_t kPokeGapMaxNs = 1000 * 1000;
// siginfo value of the mask refresh after the runtime's signal moved
// (poke_signal_release).
constexpr int kMaskRefreshValue = 0x4d4e5052;
// The runtime's signal (MNP_SIGNAL, or the one poke_signal_release moved
// to). Read anywhere, changed only under g_sysmon_start_lock.
constinit std::atomic<int> g_poke_signal{SIGURG};
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
constinit std::atomic<long> g_own_pid{0};  // this process's pid (sysmon_init, sysmon_after_fork)

// Sends the runtime's signal to an M (siginfo: rt_tgsigqueueinfo, else
// tgkill). Returns the system call's result, -EAGAIN while an exec is pending.
long send_poke(long tid, siginfo_t* si) {
  g_poke_inflight.fetch_add(1, std::memory_order_seq_cst);
  long r = -EAGAIN;
  if (g_exec_pending.load(std::memory_order_seq_cst) == 0) {
    long pid = raw_syscall(SYS_getpid);
    int sig = poke_sig();
    if (si) si->si_signo = sig;
    r = si ? raw_syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, reinterpret_cast<long>(si))
           : raw_syscall(SYS_tgkill, pid, tid, sig);
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
  si.si_pid = static_cast<pid_t>(raw_syscall(SYS_getpid));
  si.si_uid = static_cast<uid_t>(raw_syscall(SYS_getuid));
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

M* m_by_tid(int tid) {
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink)
    if (mp->tid == tid) return mp;
  return nullptr;
}

void g_sysmon_note_wake_for_dump() { sysmon_wake(); }

// The program's action for the runtime's signal (SIG_DFL until it sets one).
constinit struct sigaction g_user_action = {};
using PokeUnwrapFn = void (*)(int, struct sigaction*);
constinit PokeUnwrapFn g_poke_unwrap = nullptr;
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
  if (M* w = sigwaiter_m(sig)) send_marked(w->tid, kSigwaitKickValue);
}

void chain_to_user(int sig, siginfo_t* si, void* uc) {
  struct sigaction a = g_user_action;  // read without the lock: handler context
  bool has =
      (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction != nullptr : (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN);
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
  if (has && g && runtime_up && !g->is_g0) g->handlers_run++;
  if (a.sa_flags & SA_SIGINFO) {
    if (a.sa_sigaction) a.sa_sigaction(sig, si, uc);
  } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
    a.sa_handler(sig);
  }
  // SIG_DFL of SIGURG is "ignore"; for another MNP_SIGNAL with a default
  // action that terminates, the program never asked for it: ignored too.
}

// Runs on the signalled M's own thread. Finds the M by kernel tid, never
// through TLS (the FS base may belong to a G mid-switch).
void refresh_released(ucontext_t* uc);

void poke_handler(int, siginfo_t* si, void* ucv) {
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kDumpRequestValue) {
    // Sent to the process: any M may take it, inside a wrapped call too.
    if (M* self = m_by_tid(raw_gettid()); self && self->curg && !self->curg->is_g0)
      self->curg->runtime_eintr.store(1, std::memory_order_relaxed);
    trace_request_dump();
    g_sysmon_note_wake_for_dump();
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kSigwaitKickValue &&
      si->si_pid == static_cast<pid_t>(raw_syscall(SYS_getpid))) {
    // A slot waits for the sigwait this M's G is in (keep_pending): the
    // call ends with the runtime's EINTR and looks at the slots again.
    if (M* self = m_by_tid(raw_gettid()); self && self->curg && !self->curg->is_g0)
      self->curg->runtime_eintr.store(1, std::memory_order_relaxed);
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kMaskRefreshValue &&
      si->si_pid == static_cast<pid_t>(raw_syscall(SYS_getpid))) {
    refresh_released(static_cast<ucontext_t*>(ucv));
    return;
  }
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == kSigpendKickValue &&
      si->si_pid == static_cast<pid_t>(raw_syscall(SYS_getpid))) {
    // sysmon asks the G on this M to run handlers that arrived between Gs
    // (on g0 now: the slots stay, sysmon tries again). Not while the M is
    // inside the runtime (a Lock held, scheduling, switching Gs: futex.h):
    // a handler's sem_post would wait for a lock this very thread holds.
    // The slots stay for sysmon's next round.
    if (M* self = m_by_tid(raw_gettid()); self && self->locks != 0) return;
    // Nor anywhere in the shim's own code, which may be half-way through
    // a change the handler would see or undo (a handler that parks moves
    // the G to another M under the feet of code that has its M and P in
    // hand).
    uintptr_t kick_rip = arch_uc_pc(static_cast<ucontext_t*>(ucv));
    if (kick_rip >= reinterpret_cast<uintptr_t>(__ehdr_start) && kick_rip < reinterpret_cast<uintptr_t>(__etext))
      return;
    int saved_errno = errno;
    sigpend_run(ucv, &static_cast<ucontext_t*>(ucv)->uc_sigmask);
    errno = saved_errno;
    return;
  }
  M* mp = m_by_tid(raw_gettid());
  // Not sent by sysmon (no poke outstanding for this M, or not a tgkill from
  // this process): the program's own signal, for its own action.
  uint32_t pending = mp ? mp->pokes.load(std::memory_order_relaxed) : 0;
  if (!pending || !si || si->si_code != SI_TKILL || si->si_pid != static_cast<pid_t>(raw_syscall(SYS_getpid))) {
    chain_to_user(si ? si->si_signo : poke_sig(), si, ucv);
    return;
  }
  mp->pokes.fetch_sub(1, std::memory_order_relaxed);
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
  auto* uc = static_cast<ucontext_t*>(ucv);
  uintptr_t rip = arch_uc_pc(uc);
  if (rip >= reinterpret_cast<uintptr_t>(__ehdr_start) && rip < reinterpret_cast<uintptr_t>(__etext)) return;
  // Interrupted inside a system call (about to restart it, or just returned
  // -EINTR from it): a blocked-M detection; otherwise user code.
  if (!arch_uc_in_syscall(uc)) {
    // Running user code: a preemption request, honoured only at a safe point.
    // Taken once: the blocked-M signals that keep coming while the M waits
    // for a CPU must not each pay for a stack walk (they could keep the M
    // in this handler for good).
    uint32_t want = kPreemptAsync;
    if (!preempt_enabled() || !gp->preempt.compare_exchange_strong(want, kPreemptMarked, std::memory_order_relaxed))
      return;
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
    bool safe = preempt_safe_point(uc);
    tls_unwinding = false;
    tls_g = gp;
    mp->poke_walking = false;
    if (safe && gp->m == mp && mp->p && gp->status.load(std::memory_order_relaxed) == kGRunning) {
      raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&uc->uc_sigmask), 0, 8);
      preempt_switch();
      // An asynchronous pthread_cancel that found us preempted acts now
      // (interpose/cancel.cpp): the mask is the interrupted one already.
      if (cancel_due_async(cancelhandling(gp).load(std::memory_order_acquire))) pthread_testcancel();
    }
    errno = saved_errno;
    return;
  }
  mark_in_syscall(mp, gp);
}

// The kernel action of the runtime's signal.
struct sigaction poke_action() {
  struct sigaction sa = {};
  sa.sa_sigaction = poke_handler;
  // Not SA_ONSTACK: an alternate signal stack belongs to the kernel thread
  // (Rust's std gives every thread one), and a G preempted inside this
  // handler leaves its signal frame where it ran; on a shared alternate
  // stack the M's next signal would overwrite it. The G's own stack keeps
  // the frame safe until the G resumes and returns through sigreturn.
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
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
// keeps a process-directed instance pending instead of discarding it there.
// A poke already queued on the old signal when it moves reaches the
// program's action once (SIGURG's default discards it; a handler sees a
// spurious SIGURG, as a program must expect from SIGURG anyway).
constinit bool g_poke_moved = false;                 // (g_sysmon_start_lock)
constinit std::atomic<uint64_t> g_released_bits{0};  // signals the runtime gave back
using PokeRewrapFn = void (*)(int, const struct sigaction*);
constinit PokeRewrapFn g_poke_rewrap = nullptr;

// In the refresh signal's handler on an M: the given-back signals its mask
// should block now (its G's, or what every G blocks when it has none) are
// added to the mask sigreturn restores. Only added: a block that comes
// too early holds a signal pending a moment, one missing loses it.
void refresh_released(ucontext_t* uc) {
  M* mp = m_by_tid(raw_gettid());
  if (!mp) return;
  uint64_t rel = g_released_bits.load(std::memory_order_relaxed);
  G* g = mp->curg;
  // A wrapped call of g's it interrupts ends with the runtime's EINTR.
  if (g && !g->is_g0) g->runtime_eintr.store(1, std::memory_order_relaxed);
  uint64_t want = (g && !g->is_g0 ? g->kmask : idle_kmask()) & rel;
  if (!want) return;
  uc->uc_sigmask.__val[0] |= want;
  if (mp->kmask != kKmaskUnknown) mp->kmask |= want;
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
  }
  return 0;
}

// Whether the running G's P has anything else to run: a queued G, a G in
// the global queue, or a due timer (its G becomes runnable when it fires).
// Without any, a G that runs on past its slice is left alone: preempting a
// G that would be picked again at once costs a signal, and a traced
// process (gdb, strace) a tracer round trip, for nothing.
bool p_has_other_work(P* pp, int64_t now) {
  return !pp->runq.empty() || sched.runq_size.load(std::memory_order_relaxed) > 0 ||
         pp->timers.when0.load(std::memory_order_relaxed) <= now;
}

// Sends sysmon's signal to mp, unless one sent less than kPokeStaleNs ago
// is still on its way: a second would only merge with it in the kernel (a
// standard signal is pending once), and counting both would leave
// M::pokes above the number the handler will ever see, so that a later
// SIGURG of the program's would be taken for ours. One older than that is
// taken as merged with another instance of the signal: the count restarts.
constexpr int64_t kPokeStaleNs = 10 * 1000 * 1000;
void poke_m(M* mp, int64_t now) {
  if (mp->pokes.load(std::memory_order_relaxed) != 0 && now - mp->poke_sent < kPokeStaleNs) return;
  mp->poke_sent = now;
  mp->pokes.store(1, std::memory_order_relaxed);
  if (send_poke(mp->tid, nullptr) < 0) mp->pokes.store(0, std::memory_order_relaxed);
}

// Whether kernel thread `tid` of this process is stopped (job-control stop
// or ptrace stop): a signal cannot act on it until it is resumed, and under
// a tracer each one costs the tracer a stop it did not ask for. Read from
// /proc with raw calls (sysmon calls no interposed function); unknown
// counts as not stopped.
bool thread_stopped(long tid) {
  char path[48];
  char* e = path + sizeof path - 1;
  char* p = fmt_str(path, e, "/proc/self/task/");
  p = fmt_u64(p, e, static_cast<uint64_t>(tid));
  p = fmt_str(p, e, "/stat");
  *p = 0;
  long fd = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  long got = raw_syscall(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1);
  raw_syscall(SYS_close, fd);
  if (got <= 0) return false;
  buf[got] = 0;
  // "tid (comm) S ...": the state follows the last ')' (comm may hold any byte).
  char* close_paren = nullptr;
  for (char* c = buf; *c; c++)
    if (*c == ')') close_paren = c;
  if (!close_paren || close_paren[1] != ' ') return false;
  return close_paren[2] == 't' || close_paren[2] == 'T';
}

// Signals the M of every P that sits still with its M asleep in the kernel.
bool detect_blocked(int64_t now) {
  bool any = false;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    M* mp = pp->m;
    if (pp->status.load(std::memory_order_acquire) != kPRunning || !mp) {
      pp->sysmon_m = nullptr;
      continue;
    }
    uint32_t tick = __atomic_load_n(&pp->schedtick, __ATOMIC_RELAXED);
    if (pp->sysmon_m != mp || pp->sysmon_sched != tick) {
      pp->sysmon_m = mp;
      pp->sysmon_sched = tick;
      pp->run_since = now;
      pp->poke_gap = 0;
      pp->poke_after = 0;
      mp->sysmon_cpu = thread_cpu_ns(mp->tid);
      continue;
    }
    int64_t cpu = thread_cpu_ns(mp->tid);
    if (cpu < 0 || cpu != mp->sysmon_cpu) {  // it is running: not blocked
      mp->sysmon_cpu = cpu;
      // The same time slice for kPreemptNs: one G that makes no scheduling
      // point, or Gs handing the P to each other through next (the tick
      // stands still for those, sched.cpp execute), while something else
      // waits for the P. Mark the running G: its next park or yield ends
      // the slice (next_local). And signal it, so a G that never parks
      // stops at a safe point. Again every millisecond while the slice
      // goes on.
      bool marked = false;
      if (now - pp->run_since >= kPreemptNs) {
        gmem_peek_begin();  // the G may exit and be unmapped meanwhile
        G* gp = mp->curg;
        // Also for an asynchronous cancellation whose SIGCANCEL found the
        // G where it could not act (interpose/cancel.cpp): the preemption
        // acts on it (poke_handler).
        // A real-time G's slice is the kernel's real-time bandwidth (ksched.h).
        bool rt = gp && gp->ks_rt.load(std::memory_order_relaxed);
        bool over = !rt || now - pp->run_since >= kRtSliceNs;
        if (gp && !gp->is_g0 &&
            ((over && p_has_other_work(pp, now)) ||
             cancel_due_async(cancelhandling(gp).load(std::memory_order_relaxed)))) {
          gp->preempt.store(preempt_enabled() ? kPreemptAsync : kPreemptMarked, std::memory_order_relaxed);
          marked = true;
        }
        gmem_peek_end();
        if (marked) {
          if (preempt_enabled()) poke_m(mp, now);
          pp->run_since = now - (rt ? kRtSliceNs : kPreemptNs) + 1000 * 1000;
        }
      }
      continue;
    }
    // Its CPU clock stood still: asleep in the kernel, or only waiting for
    // a CPU on a loaded machine (the signal then finds it outside a system
    // call and does nothing). The first signal goes at once; while the
    // tick stays, more follow with a doubling gap up to kPokeGapMaxNs, so
    // an M that waits for a CPU is not kept busy with signals. run_since
    // stays: waiting for a CPU does not start a new time slice (restarting
    // the slice's clock here let a hand-off chain keep its P for hundreds
    // of milliseconds).
    if (now < pp->poke_after) continue;
    pp->poke_gap = pp->poke_gap == 0 ? kSysmonMinNs : std::min(2 * pp->poke_gap, kPokeGapMaxNs);
    pp->poke_after = now + pp->poke_gap;
    // Still standing after the doubling gaps: a stopped thread (SIGSTOP, a
    // tracer's stop) cannot take the signal; skip it while it stays so.
    if (pp->poke_gap == kPokeGapMaxNs && thread_stopped(mp->tid)) continue;
    poke_m(mp, now);
    any = true;
  }
  (void)now;
  return any;
}

// One round: retake Ps stuck in a syscall since the previous round.
bool retake(int64_t now) {
  bool any = false;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    if (pp->status.load(std::memory_order_acquire) != kPSyscall) continue;
    uint32_t t = pp->syscalltick.load(std::memory_order_acquire);
    if (t != pp->sysmon_tick) {
      pp->sysmon_tick = t;
      pp->sysmon_when = now;
      continue;
    }
    // Same syscall as last round: its M may be asleep in the kernel
    // (exitsyscall_fast then refreshes the M's CPU clock base).
    pp->syscall_long.store(true, std::memory_order_relaxed);
    // Leave it alone if it has nothing queued
    // and others are idle anyway, unless it has been 10 ms.
    if (pp->runq.empty() && sched.nmspinning.load() + sched.npidle.load() > 0 && now - pp->sysmon_when < kSysmonMaxNs)
      continue;
    uint32_t s = kPSyscall;
    if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) {
      any = true;
      handoffp(pp);
    }
  }
  return any;
}

constinit std::atomic<int> g_sysmon_tid{0};
// Lazy start (docs/ARCHITECTURE.md, "Start-up"): sysmon and the runtime's
// signal handler exist once the process has a second G, a second M, a
// wait, or a scheduler trace. g_poke_installed survives fork (the kernel's
// action does); sysmon_up does not (the thread does not).
constinit Lock g_sysmon_start_lock;
constinit bool g_poke_installed = false;

void* sysmon_main(void*) {
  // A cached stack's poison, as in mstart (sched.cpp).
  san_unpoison_below(tcb_field<void*>(reinterpret_cast<void*>(arch_get_fs()), tcbo::kStackBlock));
  // No handler of the program's runs on sysmon: it is no M (it holds
  // sched.lock in handoffp without an M to count it, futex.h) and no
  // thread of the program's. It is born with every signal blocked
  // (os_thread_create); blocking them again here keeps that true whoever
  // started it, so the kernel always picks another thread.
  g_sysmon_tid.store(raw_gettid(), std::memory_order_release);
  sigset_t all;
  sigfillset(&all);
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), 0, 8);
  int64_t delay = kSysmonMinNs;
  int idle = 0;
  int64_t last_watch = 0;
  bool mem_pending = false;  // free Gs or parked stacks to give back (gmem, sched)
  for (;;) {
    // Sleep so that entersyscall wakes us only when every P is idle (nothing
    // ran, so a syscall is news); otherwise the back-off alone (<= 10 ms)
    // bounds how late a blocked call is noticed, and quick syscalls never
    // pay a futex wake.
    // With every P idle and the back-off at its end, nothing can need
    // sysmon until a P gets busy again, and sysmon_p_busy wakes it then:
    // sleep without a deadline (a deadline-less idle process costs no CPU).
    // The store/load pairs with npidle's decrement and sysmon_p_busy's load.
    const auto nprocs = static_cast<int32_t>(sched.nprocs);
    if (delay > kSysmonMinNs * 50 && sched.npidle.load(std::memory_order_relaxed) == nprocs) {
      g_sysmon_sleeping_long.store(1, std::memory_order_seq_cst);
      // Gs waiting for fds with no M able to sleep in the netpoller (its
      // eventfd was given up, netpoll.cpp) need sysmon's 10 ms harvest.
      // Signals waiting for a G (sigpend.h): look again on the back-off.
      // Watched futex waiters (sema.h): look at their words on the back-off.
      // Memory to give back: look again on the back-off.
      int64_t ns =
          delay >= kSysmonMaxNs && !netpoll_worth_polling() && !sigpend_any() && !sema_watching() && !mem_pending
              ? trace_period_ns()
              : delay;
      if (sched.npidle.load(std::memory_order_seq_cst) == nprocs) sysmon_sleep(ns);
      g_sysmon_sleeping_long.store(0, std::memory_order_seq_cst);
    } else {
      struct timespec ts = {0, static_cast<long>(delay)};
      raw_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
    }
    newm_drain();
    int64_t now = nanotime();
    mem_pending = gmem_reclaim();
    mem_pending |= gfree_scavenge(now);
    uint64_t parks = 0;
    for (uint32_t i = 0; i < sched.nprocs; i++) parks += sched.allp[i].parks.load(std::memory_order_relaxed);
    mem_pending |= gmem_shrink_parked(now, parks);
    trace_tick(now);
    bool busy = retake(now);
    netpoll_deliver_signals();
    // Not counted as work: a signal every G blocks stays pending, as in the
    // kernel, and must not keep sysmon at its shortest period.
    sigpend_deliver();
    // Every P has been busy for 10 ms without running out of work (when it
    // does, it harvests ready fds itself): harvest for them.
    if (netpoll_worth_polling() && now - netpoll_last_poll() > kSysmonMaxNs && netpoll_poll_now() > 0) busy = true;
    if (g_poke_enabled && detect_blocked(now)) busy = true;
    // Gs in the futex interposer's FUTEX_WAIT whose word changed: woken by
    // a thread the runtime did not create (sema.h). Every kWatchNs at most,
    // so a wake from outside is seen within kWatchNs plus sysmon's delay.
    if (now - last_watch >= kWatchNs && sema_watching()) {
      last_watch = now;
      sema_watch_scan();
    }
    if (busy) {
      idle = 0;
      delay = kSysmonMinNs;
    } else if (++idle > 50) {
      delay = delay * 2 > kSysmonMaxNs ? kSysmonMaxNs : delay * 2;
      // While some P runs Gs, look at least every 2 ms: a G due for
      // preemption (10 ms) then waits at most ~12 ms, not 20.
      if (sched.npidle.load(std::memory_order_relaxed) < static_cast<int32_t>(sched.nprocs) && delay > kBusyMaxNs)
        delay = kBusyMaxNs;
      if (delay > trace_period_ns()) delay = trace_period_ns();
    }
  }
}

}  // namespace

constinit std::atomic<bool> sysmon_up{false};

void set_poke_unwrap_hook(void (*hook)(int, struct sigaction*)) { g_poke_unwrap = hook; }

bool exec_prepare() {
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

long send_runtime_signal(long tid, siginfo_t* si) { return send_poke(tid, si); }

long send_runtime_marked(long tid, int value) { return send_marked(tid, value); }

void exec_abandon() { sends_resume(); }

bool poke_signal_is(int sig) { return g_poke_enabled && sig == poke_sig(); }

int poke_signal_number() { return g_poke_enabled ? poke_sig() : -1; }

bool on_sysmon() {
  int t = g_sysmon_tid.load(std::memory_order_acquire);
  return t != 0 && t == raw_gettid();
}

int sysmon_tid() { return g_sysmon_tid.load(std::memory_order_acquire); }

void poke_user_action(const struct sigaction* act, struct sigaction* old) {
  LockGuard lk(g_user_action_lock);
  if (old) *old = g_user_action;
  if (act) g_user_action = *act;
}

void sysmon_after_fork() {
  // The child's only thread is the one that forked: a signal another
  // thread was sending, or an exec another thread was preparing, at the
  // moment of the fork is none of the child's. Left counted, the child's
  // exec_prepare waited for ever for a send that no thread would finish
  // (bash under the shim, spinning before its execve).
  g_poke_inflight.store(0, std::memory_order_relaxed);
  g_exec_pending.store(0, std::memory_order_relaxed);
  g_own_pid.store(raw_syscall(SYS_getpid), std::memory_order_relaxed);
  g_sysmon_tid.store(0, std::memory_order_relaxed);
  g_sysmon_sleeping_long.store(0, std::memory_order_relaxed);
  g_sysmon_wake.store(0, std::memory_order_relaxed);
  new (&g_sysmon_start_lock) Lock();
  // No thread survived: the child starts its own sysmon when it needs one
  // (sysmon_ensure). The signal action is inherited.
  sysmon_up.store(false, std::memory_order_release);
}

void sysmon_init() {
  g_own_pid.store(raw_syscall(SYS_getpid), std::memory_order_relaxed);
  preempt_init();
  trace_init();
  if (!g_poke_moved) g_poke_signal.store(config().signal, std::memory_order_relaxed);
  // A scheduler trace is wanted from the start, one thread or not.
  if (trace_period_ns() != kNever) sysmon_ensure();
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
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink)
    if (mp->tid != 0 && mp->tid != me) send_marked(mp->tid, kMaskRefreshValue);
  return true;
}

void set_poke_rewrap_hook(void (*hook)(int, const struct sigaction*)) { g_poke_rewrap = hook; }

void sysmon_ensure_slow() {
  ErrnoKeeper keep_errno;  // glibc's pthread_create and malloc, on a G's behalf
  LockGuard lk(g_sysmon_start_lock);
  if (sysmon_up.load(std::memory_order_relaxed)) return;
  m0_g0_ensure();  // M0 may switch to its scheduler from now on
  if (!g_poke_installed) {
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
      // The G running now (the process's only one: the main G, or a fork
      // child's) may have blocked the signal while it was not yet the
      // runtime's: its kernel mask never blocks it from now on (sigmask.cpp).
      if (g_poke_enabled) g_kmask_open.store(uint64_t{1} << (sig - 1), std::memory_order_relaxed);
      if (G* g = get_user_g(); g && g_poke_enabled) g_load_kmask(g);
    }
  }
  if (os_thread_start(sysmon_main, nullptr) != 0)
    raw_print("warning: cannot start sysmon; a G blocked in the kernel keeps its P");
  sysmon_up.store(true, std::memory_order_release);
}

namespace {
// Marks gp (depth 0, holding a P) in a call of nesting depth `depth`. The
// depth and the P's state change together with the M held (m_lock_enter),
// so a handler of the program's never finds one changed and not the other
// (handler_begin reads the depth to decide whether to take the P back).
void enter_marked(G* gp, int depth) {
  for (;;) {
    if (MNP_UNLIKELY(!gp->m->p)) exitsyscall_now(gp);  // lost it in uncovered code: take one back first
    m_lock_enter();
    M* mp = gp->m;
    if (MNP_LIKELY(mp->p != nullptr)) {
      gp->syscall_depth = depth;
      mark_in_syscall(mp, gp);
      m_lock_exit();
      break;
    }
    m_lock_exit();
  }
  if (MNP_UNLIKELY(g_sysmon_sleeping_long.load(std::memory_order_relaxed)) &&
      g_sysmon_sleeping_long.exchange(0, std::memory_order_acq_rel))
    sysmon_wake();
}

// exitsyscall_now with the M held by the caller (m_lock_enter): released
// here, or carried by the switch of exitsyscall_park.
void exitsyscall_now_held(G* gp) {
  if (exitsyscall_fast(gp)) {
    m_lock_exit();
    return;
  }
  exitsyscall_park(gp);
}
}  // namespace

void entersyscall() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up) return;
  gp->runtime_eintr.store(0, std::memory_order_relaxed);
  // A wrapped call inside another: the outer one already gave the P up.
  if (gp->syscall_depth != 0) {
    gp->syscall_depth++;
    return;
  }
  enter_marked(gp, 1);
}

int handler_begin(G* gp) {
  int depth = gp->syscall_depth;
  if (depth == 0) return 0;
  m_lock_enter();
  gp->syscall_depth = 0;
  exitsyscall_now_held(gp);
  return depth;
}

void handler_end(G* gp, int depth) {
  if (depth != 0) enter_marked(gp, depth);
}

void sysmon_wake_for_newm() {
  g_sysmon_sleeping_long.store(0, std::memory_order_relaxed);
  sysmon_wake();
}

void sysmon_wake_from_signal() { sysmon_wake(); }

void sysmon_p_busy() {
  if (MNP_UNLIKELY(g_sysmon_sleeping_long.load(std::memory_order_seq_cst)) &&
      g_sysmon_sleeping_long.exchange(0, std::memory_order_acq_rel))
    sysmon_wake();
}

void entersyscall_block() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up) return;
  // The process's only G on its only M (sched.h, wait_direct): nothing
  // else could use the P, and handing it off started an M and sysmon for
  // nothing; a thread created meanwhile brings sysmon, which retakes it.
  // (setpriv's getpwnam did so at 1 P before it changed its credentials;
  // the two threads without them made glibc's setresgid abort.)
  bool alone = wait_direct(gp);
  entersyscall();
  if (alone || gp->syscall_depth != 1) return;
  // Held from the CAS until the P has a new owner: a handler of the
  // program's in between (handler_begin takes a P for it) found no P — this
  // one, kPIdle, is on no list yet — and queued the G, while the P waited
  // for the hand-off that only the queued G would make (sigsuspend at one
  // P hung so).
  m_lock_enter();
  M* mp = gp->m;
  P* pp = mp->oldp;
  uint32_t s = kPSyscall;
  if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) handoffp(pp);
  m_lock_exit();
}

bool syscall_eintr_was_ours() {
  G* gp = get_user_g();
  return gp && gp->runtime_eintr.exchange(0, std::memory_order_relaxed) != 0;
}

void exitsyscall() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up || gp->syscall_depth == 0) return;  // entered before the runtime was up
  if (gp->syscall_depth > 1) {
    gp->syscall_depth--;
    return;
  }
  m_lock_enter();  // as in enter_marked
  gp->syscall_depth = 0;
  exitsyscall_now_held(gp);
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
  mp->oldp = nullptr;
  uint32_t s = kPSyscall;
  if (MNP_LIKELY(pp->status.compare_exchange_strong(s, kPRunning, std::memory_order_acq_rel))) {
    // sysmon saw this call last a whole round: the M may have slept in the
    // kernel, and its CPU clock no longer follows wall time since its base
    // (cpuclock.cpp). Shorter sleeps stay within the estimate's 1 ms.
    if (MNP_UNLIKELY(pp->syscall_long.load(std::memory_order_relaxed))) {
      pp->syscall_long.store(false, std::memory_order_relaxed);
      cpu_stale(mp);
    }
    pp->m = mp;
    mp->p = pp;
    casgstatus(gp, kGSyscall, kGRunning);
    return true;
  }
  // Retaken: any idle P will do. The call lasted a sysmon round at least.
  cpu_stale(mp);
  if (P* p2 = exitsyscallfast_pidle()) {
    acquirep(mp, p2);
    casgstatus(gp, kGSyscall, kGRunning);
    return true;
  }
  return false;
}

void exitsyscall_now(G* gp) {
  m_lock_enter();
  exitsyscall_now_held(gp);
}

}  // namespace mnp
