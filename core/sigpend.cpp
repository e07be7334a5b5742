// core/sigpend.cpp — see sigpend.h.
#include "core/sigpend.h"

#include <ucontext.h>

#include <cstring>

#include "core/base.h"
#include "core/cancel.h"
#include "core/gmem.h"
#include "core/tcb.h"
#include "core/netpoll.h"
#include "core/poke.h"
#include "core/sched.h"
#include "core/sema.h"

namespace mnp {

constinit std::atomic<uint32_t> sigpend_count{0};

namespace {

enum : uint32_t { kFree, kFilling, kReady, kTaken };

struct Slot {
  std::atomic<uint32_t> state{kFree};
  G* target = nullptr;  // null: process-directed, for any G that does not block it
  int sig = 0;
  SigAct act = {};
  siginfo_t si = {};
  // The signalfd kick of a process slot put while the M was inside the
  // runtime (the runtime's signal's handler, sigpend_put_for): sysmon's.
  std::atomic<bool> kick_owed{false};
};
constexpr int kSlots = 64;
MNP_COLD_BSS constinit Slot g_slots[kSlots];
// Set before a slot is first taken: a fork child of a process that never
// queued a signal has nothing to reset (and does not fault in 19 KiB of
// slots to find that out).
constinit std::atomic<bool> g_slots_used{false};

constexpr uint64_t kBit1 = 1;
inline uint64_t bit_of(int sig) { return kBit1 << (sig - 1); }

bool standard(int sig) { return sig < SIGRTMIN; }

using SigactHook = void (*)(int, SigAct*);
MNP_START_DATA constinit SigactHook g_sigact_hook = nullptr;
using PutHook = void (*)(int);
constinit PutHook g_put_hook = nullptr;

// Runs one taken slot's handler on g as the kernel would have: with the
// action's mask and (unless SA_NODEFER) the signal itself added to the G's
// mask while it runs (the G's own, so that it moves with the G if the
// handler parks). A default action the G now lets through is the kernel's.
void run_one(G* g, int sig, const SigAct& act, siginfo_t* si, void* uc, const sigset_t* base) {
  if (act.handler == reinterpret_cast<void*>(SIG_IGN)) return;
  if (act.handler == reinterpret_cast<void*>(SIG_DFL)) {
    raw_syscall(SYS_tgkill, raw_syscall(SYS_getpid), g->m->tid, sig);
    return;
  }
  sigset_t saved = g_handler_mask_begin(g, base, sig, &act.mask, act.flags);
  g_load_kmask(g);
  g->sig_ran |= (act.flags & SA_RESTART) ? kSigRan : kSigRan | kSigRanNoRestart;
  g->in_handler++;  // as in the trampoline (interpose/signal.cpp)
  g->handlers_run++;
  auto* ucp = static_cast<ucontext_t*>(uc);
  uc_show_g_view(ucp, *base);
  int depth = handler_begin(g);
  if (act.flags & SA_SIGINFO) reinterpret_cast<void (*)(int, siginfo_t*, void*)>(act.handler)(sig, si, uc);
  else reinterpret_cast<void (*)(int)>(act.handler)(sig);
  handler_end(g, depth);
  uc_hide_g_view(ucp);
  g->in_handler--;
  g_sigmask_set(g, &saved);
  g_load_kmask(g);
}

// run_one with the current context for the handler's third argument, in a
// frame of its own (getcontext may return twice, like setjmp).
__attribute__((noinline)) void run_one_here(G* g, int sig, const SigAct& act, siginfo_t* si, const sigset_t* base) {
  ucontext_t here;
  getcontext(&here);
  run_one(g, sig, act, si, &here, base);
}

bool runs_user_g(M* mp, G* only, int sig) {
  gmem_peek_begin();  // mp's G may exit and be unmapped meanwhile
  G* g = mp->curg;
  bool yes = g && !g->is_g0 && (!only || g == only) && (only || !g_blocks(g, sig));
  if (yes) {
    uint32_t st = g->status.load(std::memory_order_acquire);
    yes = st == kGRunning || st == kGSyscall;
  }
  gmem_peek_end();
  return yes;
}

// Sends the runtime's signal, marked, to an M that runs a user G (only, if
// given). The G may have moved on when it arrives; then the slots stay and
// the next round tries again.
bool kick_running(G* only, int sig) {
  if (poke_signal_number() <= 0) return false;
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink) {
    if (!runs_user_g(mp, only, sig)) continue;
    if (send_runtime_marked(mp->tid, kSigpendKickValue) == 0) return true;
  }
  return false;
}

// may_interrupt: the woken G is the one the kernel would have chosen (the
// main G, or any once main has exited), so the signal may end its wait
// with EINTR; any other G only runs the handler and waits on.
bool wake_parked(int sig, bool restart, G* only, bool may_interrupt) {
  if (netpoll_wake_for_handler(sig, restart, only, may_interrupt) || sema_wake_for_signal(only, sig, may_interrupt))
    return true;
  // A joiner (the only other park): its wait record undoes the join and
  // wakes it, and the join starts over once the handler ran.
  if (only) return only->wait_reason == kWaitJoin && cancel_wake_for_signal(only);
  bool hit = false;
  gmem_for_each_tcb([&](void* tcb) {
    G* g = reinterpret_cast<G*>(static_cast<char*>(tcb) + tcbo::kSize);
    if (!hit && g->wait_reason == kWaitJoin && !g_blocks(g, sig) &&
        g->status.load(std::memory_order_acquire) == kGWaiting)
      hit = cancel_wake_for_signal(g);
  });
  return hit;
}

}  // namespace

int sigpend_put_for(G* target, int sig, const siginfo_t* si, const SigAct& act) {
  if (standard(sig))
    for (auto& s : g_slots)
      if (s.state.load(std::memory_order_acquire) == kReady && s.sig == sig && s.target == target) {
        sysmon_wake_from_signal();
        return -1;  // merged, as the kernel merges a pending standard signal
      }
  int idx = -1;
  if (!g_slots_used.load(std::memory_order_relaxed)) g_slots_used.store(true, std::memory_order_relaxed);
  for (int i = 0; i < kSlots; i++) {
    Slot& s = g_slots[i];
    uint32_t f = kFree;
    if (!s.state.compare_exchange_strong(f, kFilling, std::memory_order_acquire)) continue;
    sigpend_count.fetch_add(1, std::memory_order_relaxed);
    s.target = target;
    s.sig = sig;
    s.act = act;
    if (si) s.si = *si;
    else {
      memset(&s.si, 0, sizeof s.si);
      s.si.si_signo = sig;
    }
    s.kick_owed.store(false, std::memory_order_relaxed);
    s.state.store(kReady, std::memory_order_seq_cst);
    idx = i;
    break;
  }
  // All slots full: only real-time signals can fill them; like a full
  // kernel queue, the signal is dropped.
  sysmon_wake_from_signal();
  // The kernel may have given it to any thread rather than to the one
  // whose sigwait or signalfd read waits for it.
  if (idx >= 0 && !target) {
    poke_kick_sigwaiter(sig);
    // The kick takes a netpoll lock and readies Gs: not from a handler
    // that interrupted the runtime holding those (the runtime's signal's
    // handler is not held back as the program's are).
    M* mp = m_by_tid(raw_gettid());  // not through TLS: the FS base may be mid-switch
    if (mp && (mp->locks != 0 || (mp->curg && mp->curg->mhold != 0))) {
      g_slots[idx].kick_owed.store(true, std::memory_order_release);
      sysmon_wake_from_signal();
    } else if (g_put_hook) {
      g_put_hook(sig);
    }
  }
  return idx;
}

void sigpend_put(int sig, const siginfo_t* si, const SigAct& act) {
  sigpend_put_for(nullptr, sig, si, act);
  // The main G, which the kernel prefers, on an M and letting it in: kicked
  // now, as sysmon would on its next round (up to 2 ms away while Ps are
  // busy, and a standard signal sent again meanwhile merges into the slot).
  // Typically main waits in a real call of the few-threads path
  // (sched.h, wait_few) that the kernel woke for this signal before this
  // idle M took it first.
  G* mg = netpoll_signal_main();
  if (mg && !g_blocks(mg, sig) && mg->status.load(std::memory_order_acquire) != kGDead) kick_running(mg, sig);
}

namespace {
// Bit sig-1: the program's handler for sig lacks SA_RESTART.
constinit std::atomic<uint64_t> g_norestart{0};
}  // namespace

void sig_note_norestart(int sig, bool norestart) {
  if (sig < 1 || sig > 64) return;
  if (norestart) g_norestart.fetch_or(bit_of(sig), std::memory_order_seq_cst);
  else g_norestart.fetch_and(~bit_of(sig), std::memory_order_seq_cst);
}

bool sig_handlers_restart() { return g_norestart.load(std::memory_order_seq_cst) == 0; }

uint64_t sigpend_bits_for(G* g) {
  uint64_t b = 0;
  if (!sigpend_any()) return 0;
  for (auto& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kReady && (!s.target || s.target == g)) b |= bit_of(s.sig);
  return b;
}

uint64_t sigpend_bits_for_own(G* g) {
  uint64_t b = 0;
  if (!sigpend_any()) return 0;
  for (auto& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kReady && s.target == g) b |= bit_of(s.sig);
  return b;
}

int sigpend_take_in(G* g, uint64_t set, siginfo_t* si, Pending which) {
  if (!sigpend_any()) return 0;
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady || (s.target && s.target != g) || !(set & bit_of(s.sig)))
      continue;
    if ((which == Pending::kOwn && !s.target) || (which == Pending::kProcess && s.target)) continue;
    uint32_t r = kReady;
    if (!s.state.compare_exchange_strong(r, kTaken, std::memory_order_acq_rel)) continue;
    int sig = s.sig;
    if (si) *si = s.si;
    s.state.store(kFree, std::memory_order_release);
    sigpend_count.fetch_sub(1, std::memory_order_release);
    return sig;
  }
  return 0;
}

void sigpend_forget(G* g) {
  if (!sigpend_any()) return;
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady || s.target != g) continue;
    uint32_t r = kReady;
    if (!s.state.compare_exchange_strong(r, kTaken, std::memory_order_acq_rel)) continue;
    s.state.store(kFree, std::memory_order_release);
    sigpend_count.fetch_sub(1, std::memory_order_release);
  }
}

MNP_STARTUP void set_sigact_hook(void (*hook)(int, SigAct*)) { g_sigact_hook = hook; }
void set_sigpend_put_hook(void (*hook)(int)) { g_put_hook = hook; }

void sigpend_run(void* uc, const sigset_t* blocked) {
  G* g = get_user_g();
  if (!g || !runtime_up) return;
  sigset_t base = blocked ? *blocked : g->sigmask;
  // The kernel never blocks the runtime's signal; the G's mask may.
  if (int ps = poke_signal_number(); ps > 0 && g_blocks(g, ps)) sigaddset(&base, ps);
  // Again after each handler: one may have been kept while it ran (its
  // mask blocked it) in a slot already passed, and it is due as soon as
  // the handler returns; left for sysmon, it ran about 2 ms late (a
  // collector's stop signal sent while its restart handler still ran:
  // D's GC.collect 8-20 times slower).
  for (bool ran = true; ran;) {
    ran = false;
    for (auto& s : g_slots) {
      if (s.state.load(std::memory_order_acquire) != kReady || sigismember(&base, s.sig)) continue;
      if (s.target && s.target != g) continue;
      uint32_t r = kReady;
      if (!s.state.compare_exchange_strong(r, kTaken, std::memory_order_acq_rel)) continue;
      bool targeted = s.target != nullptr;
      int sig = s.sig;
      SigAct act = s.act;
      siginfo_t si = s.si;
      s.state.store(kFree, std::memory_order_release);
      sigpend_count.fetch_sub(1, std::memory_order_release);
      if (uc) run_one(g, sig, act, &si, uc, &base);
      else run_one_here(g, sig, act, &si, &base);
      ran = true;
      // The EINTR the signal owes a wait of the thread the kernel would have
      // given it to, as after a handler that ran where the kernel put it —
      // unless sysmon already decided it when it woke this G, or this G is
      // that thread. A thread-directed one interrupts no other thread.
      // A default action interrupts nothing: it ends (or stops) the process
      // or throws the signal away.
      int decided = sig;
      if (!g->sig_eintr.compare_exchange_strong(decided, 0, std::memory_order_acq_rel) && !targeted &&
          act.handler != reinterpret_cast<void*>(SIG_DFL) && g != netpoll_signal_main())
        netpoll_signal_arrived(sig, (act.flags & SA_RESTART) != 0);
    }
  }
}

bool sigpend_deliver() {
  if (!sigpend_any()) return false;
  bool did = false, process_done = false;
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady) continue;
    G* t = s.target;
    int sig = s.sig;
    if (s.kick_owed.exchange(false, std::memory_order_acq_rel) && g_put_hook) g_put_hook(sig);
    // A default action kept for a G (interpose/signal.cpp, the default's
    // guard) ends no wait: the G it wakes runs it and waits on.
    bool dfl = s.act.handler == reinterpret_cast<void*>(SIG_DFL);
    bool restart = dfl || (s.act.flags & SA_RESTART) != 0;
    if (t) {
      // Its own: only t runs it, once it lets it through, or takes it in a
      // sigwait for it (blocked, as sigwait wants), whose kernel call is
      // kicked; on its way to the call it looks at the slots itself. (A
      // handler that longjmps out of such a wait leaves the flag set: a
      // signal t blocks then gets t's later calls kicked each round until
      // t unblocks it or waits again.)
      uint32_t st = t->status.load(std::memory_order_acquire);
      if (g_blocks(t, sig) && !(st == kGSyscall && (t->sigwait_bits.load(std::memory_order_seq_cst) & bit_of(sig))))
        continue;
      if (st == kGRunning || st == kGSyscall) did |= kick_running(t, sig);
      else if (st == kGWaiting) did |= wake_parked(sig, restart, t, !dfl);
      continue;  // runnable: kicked once it runs
    }
    if (process_done) continue;
    process_done = true;
    G* mg = netpoll_signal_main();
    bool main_alive = mg && mg->status.load(std::memory_order_acquire) != kGDead && mg->wait_reason != kWaitForever;
    if (main_alive && !g_blocks(mg, sig)) {
      if (kick_running(mg, sig) || wake_parked(sig, restart, mg, !dfl)) {
        did = true;
        continue;
      }
    }
    // Main gone or blocking it: the kernel picks any thread that lets it
    // through, so the G found is the kernel's choice.
    did |= kick_running(nullptr, sig) || wake_parked(sig, restart, nullptr, !dfl && (!main_alive || g_blocks(mg, sig)));
  }
  return did;
}

// pthread_kill and raise (docs/ARCHITECTURE.md, "Signals").
int sig_send_to_g(G* t, int sig) {
  long pid = raw_syscall(SYS_getpid);
  uint64_t bit = bit_of(sig);
  SigAct act{reinterpret_cast<void*>(SIG_DFL), 0, {}};
  if (g_sigact_hook) g_sigact_hook(sig, &act);
  bool blocked = g_blocks(t, sig);
  G* self = get_user_g();
  if (!blocked) {
    if (act.handler == reinterpret_cast<void*>(SIG_IGN)) return 0;  // discarded, as the kernel does
    // To itself: at once, on this thread, as the kernel does (the shim's
    // own code is never preempted, so the G is still on this M).
    if (t == self) {
      long r = raw_syscall(SYS_tgkill, pid, self->m->tid, sig);
      return r < 0 ? static_cast<int>(-r) : 0;
    }
    // A default action acts on the whole process.
    if (act.handler == reinterpret_cast<void*>(SIG_DFL)) {
      long r = raw_syscall(SYS_kill, pid, sig);
      return r < 0 ? static_cast<int>(-r) : 0;
    }
    // In a call of the direct path (sched.h, direct_call) on its M: the
    // kernel interrupts the call, restarting it or not by the handler's own
    // SA_RESTART, as natively; the runtime's kick would restart it always.
    // A G that has just left the call meets the signal on its way on (its
    // M runs no other G unless the process has gained one meanwhile).
    if (t->in_direct.load(std::memory_order_seq_cst)) {
      M* mp = t->m;
      long r = mp ? raw_syscall(SYS_tgkill, pid, mp->tid, sig) : -ESRCH;
      return r < 0 ? static_cast<int>(-r) : 0;
    }
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_TKILL;
  si.si_pid = static_cast<pid_t>(pid);
  si.si_uid = static_cast<uid_t>(raw_syscall(SYS_getuid));
  sigpend_put_for(t, sig, &si, act);
  // A G in sigwait or sigsuspend for it (G::sigwait_bits) takes it from the
  // slot, like any other: its flag is set before it looks at the slots,
  // ours is looked at after the slot is put, so one of the two sees the
  // other; a kernel call it already made is ended by the kick below (the
  // runtime's EINTR, after which it looks again), and sysmon repeats the
  // kick while the slot waits. It used to be sent to the G's M with
  // tgkill, but between its flag and its kernel call the G may leave that
  // M (exitsyscall, a handler's P): Boehm GC's restart signal then went to
  // no M at all (ESRCH, which Boehm takes for a thread gone) and Guile
  // aborted ("Signals delivery fails constantly").
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool waits = (t->sigwait_bits.load(std::memory_order_seq_cst) & bit) != 0;
  if (blocked && !waits) {
    // Pending until t unblocks it, or a signalfd read of t's takes it: the
    // reader publishes its fd before it looks at the slots, so either it
    // sees ours or we see its fd and make it look again.
    if (t->sigfd_mask.load(std::memory_order_seq_cst) & bit)
      netpoll_kick_fd(t->sigfd_fd.load(std::memory_order_seq_cst));
    return 0;
  }
  uint32_t st = t->status.load(std::memory_order_acquire);
  if (st == kGRunning || st == kGSyscall) kick_running(t, sig);
  else if (st == kGWaiting) wake_parked(sig, (act.flags & SA_RESTART) != 0, t, true);
  return 0;
}

MNP_STARTUP void sigpend_after_fork() {
  if (g_slots_used.load(std::memory_order_relaxed))
    for (auto& s : g_slots) s.state.store(kFree, std::memory_order_relaxed);
  sigpend_count.store(0, std::memory_order_relaxed);
}

}  // namespace mnp
