// core/sigpend.cpp — see sigpend.h.
#include "core/sigpend.h"

#include <ucontext.h>

#include <cstring>

#include "core/base.h"
#include "core/netpoll.h"
#include "core/sched.h"
#include "core/sema.h"

namespace mnp {

void sysmon_wake_from_signal();  // syscall.cpp
int poke_signal_number();        // syscall.cpp: -1 when the runtime's signal is off

constinit std::atomic<uint32_t> sigpend_count{0};

namespace {

enum : uint32_t { kFree, kFilling, kReady, kTaken };

struct Slot {
  std::atomic<uint32_t> state{kFree};
  int sig = 0;
  G* target = nullptr;  // the only G that may take it, or null: any G
  SigAct act = {};
  siginfo_t si = {};
};
constexpr int kSlots = 64;
constinit Slot g_slots[kSlots];

constexpr long kSigsetBytes = 8;  // the kernel's sigset_t

bool standard(int sig) { return sig < SIGRTMIN; }

void get_mask(sigset_t* out) {
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(out), kSigsetBytes);
}
void set_mask(const sigset_t* s) {
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(s), 0, kSigsetBytes);
}

// Runs one taken slot's handler as the kernel would have: with the action's
// mask and (unless SA_NODEFER) the signal itself blocked on top of the G's.
void run_one(int sig, const SigAct& act, siginfo_t* si, void* uc, const sigset_t* base) {
  sigset_t entry, during = *base;
  get_mask(&entry);
  for (int s = 1; s < 65; s++)
    if (sigismember(&act.mask, s)) sigaddset(&during, s);
  if (!(act.flags & SA_NODEFER)) sigaddset(&during, sig);
  // Never block what glibc and the runtime rely on.
  sigdelset(&during, 32);
  sigdelset(&during, 33);
  if (int ps = poke_signal_number(); ps > 0) sigdelset(&during, ps);
  set_mask(&during);
  if (act.flags & SA_SIGINFO) reinterpret_cast<void (*)(int, siginfo_t*, void*)>(act.handler)(sig, si, uc);
  else reinterpret_cast<void (*)(int)>(act.handler)(sig);
  set_mask(&entry);
}

// run_one with the current context for the handler's third argument, in a
// frame of its own (getcontext may return twice, like setjmp).
__attribute__((noinline)) void run_one_here(int sig, const SigAct& act, siginfo_t* si, const sigset_t* base) {
  ucontext_t here;
  getcontext(&here);
  run_one(sig, act, si, &here, base);
}

// The first signal pending for any G, or 0.
int first_pending(bool* restart) {
  for (auto& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kReady && !s.target) {
      *restart = (s.act.flags & SA_RESTART) != 0;
      return s.sig;
    }
  return 0;
}

bool runs_user_g(M* mp, G* only) {
  G* g = mp->curg;
  if (!g || g->is_g0 || (only && g != only)) return false;
  uint32_t st = g->status.load(std::memory_order_acquire);
  return st == kGRunning || st == kGSyscall;
}

// Sends the runtime's signal, marked, to an M that runs a user G (only, if
// given). The G may have moved on when it arrives; then the slots stay and
// the next round tries again.
bool kick_running(G* only) {
  int ps = poke_signal_number();
  if (ps <= 0) return false;
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink) {
    if (!runs_user_g(mp, only)) continue;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = ps;
    si.si_code = SI_QUEUE;
    si.si_pid = static_cast<pid_t>(raw_syscall(SYS_getpid));
    si.si_uid = static_cast<uid_t>(raw_syscall(SYS_getuid));
    si.si_value.sival_int = kSigpendKickValue;
    if (raw_syscall(SYS_rt_tgsigqueueinfo, si.si_pid, mp->tid, ps, reinterpret_cast<long>(&si)) == 0) return true;
  }
  return false;
}

// may_interrupt: the woken G is the one the kernel would have chosen (the
// main G, or any once main has exited), so the signal may end its wait
// with EINTR; any other G only runs the handler and waits on.
bool wake_parked(int sig, bool restart, G* only, bool may_interrupt) {
  return netpoll_wake_for_handler(sig, restart, only, may_interrupt) || sema_wake_for_signal(only);
}

}  // namespace

namespace {
bool put(G* target, int sig, const siginfo_t* si, const SigAct& act) {
  if (standard(sig))
    for (auto& s : g_slots)
      if (s.state.load(std::memory_order_acquire) == kReady && s.sig == sig && s.target == target) {
        sysmon_wake_from_signal();
        return true;  // merged, as the kernel merges a pending standard signal
      }
  bool kept = false;
  for (auto& s : g_slots) {
    uint32_t f = kFree;
    if (!s.state.compare_exchange_strong(f, kFilling, std::memory_order_acquire)) continue;
    sigpend_count.fetch_add(1, std::memory_order_relaxed);
    kept = true;
    s.sig = sig;
    s.target = target;
    s.act = act;
    if (si) s.si = *si;
    else {
      memset(&s.si, 0, sizeof s.si);
      s.si.si_signo = sig;
    }
    s.state.store(kReady, std::memory_order_release);
    break;
  }
  // All slots full: only real-time signals can fill them; like a full
  // kernel queue, the signal is dropped.
  sysmon_wake_from_signal();
  return kept;
}
}  // namespace

void sigpend_put(int sig, const siginfo_t* si, const SigAct& act) { put(nullptr, sig, si, act); }

bool sigpend_put_for(G* target, int sig, const siginfo_t* si, const SigAct& act) {
  return put(target, sig, si, act);
}

void sigpend_forget_g(G* g) {
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady || s.target != g) continue;
    uint32_t r = kReady;
    if (!s.state.compare_exchange_strong(r, kTaken, std::memory_order_acq_rel)) continue;
    s.state.store(kFree, std::memory_order_release);
    sigpend_count.fetch_sub(1, std::memory_order_release);
  }
}

void sigpend_run(void* uc, const sigset_t* blocked) {
  G* g = get_user_g();
  if (!g || !runtime_up) return;
  sigset_t base;
  if (blocked) base = *blocked;
  else get_mask(&base);
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady || sigismember(&base, s.sig)) continue;
    if (s.target && s.target != g) continue;
    uint32_t r = kReady;
    if (!s.state.compare_exchange_strong(r, kTaken, std::memory_order_acq_rel)) continue;
    if (s.target && s.target != g) {  // refilled for another G between the checks
      s.state.store(kReady, std::memory_order_release);
      continue;
    }
    bool targeted = s.target != nullptr;
    int sig = s.sig;
    SigAct act = s.act;
    siginfo_t si = s.si;
    s.state.store(kFree, std::memory_order_release);
    sigpend_count.fetch_sub(1, std::memory_order_release);
    if (uc) run_one(sig, act, &si, uc, &base);
    else run_one_here(sig, act, &si, &base);
    // The EINTR the signal owes a netpoller wait, as after a handler that
    // ran where the kernel put it — unless sysmon already decided it when
    // it woke this G. A signal sent to this G interrupts no other G's call.
    int decided = sig;
    if (!g->sig_eintr.compare_exchange_strong(decided, 0, std::memory_order_acq_rel) && !targeted)
      netpoll_signal_arrived(sig, (act.flags & SA_RESTART) != 0);
  }
}

namespace {
// Gets the target of each signal kept for one G to take it: a kick if it
// runs, a wake-up (with the EINTR its wait owes the signal) if it is
// parked. A target that is runnable, or parked where nothing wakes it,
// takes it when it next parks or is kicked on a later round.
bool deliver_targeted() {
  bool did = false;
  for (auto& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != kReady || !s.target) continue;
    G* t = s.target;
    if (kick_running(t) || wake_parked(s.sig, (s.act.flags & SA_RESTART) != 0, t, true)) did = true;
  }
  return did;
}

}  // namespace

bool sigpend_deliver() {
  if (!sigpend_any()) return false;
  bool did = deliver_targeted();
  bool restart = false;
  int sig = first_pending(&restart);
  if (!sig) return did;  // none for any G, or still being filled: next round
  G* mg = netpoll_signal_main();
  bool main_alive = mg && mg->status.load(std::memory_order_acquire) != kGDead && mg->wait_reason != kWaitForever;
  if (main_alive) {
    if (kick_running(mg)) return true;
    if (wake_parked(sig, restart, mg, true)) return true;
  }
  if (kick_running(nullptr)) return true;
  return wake_parked(sig, restart, nullptr, !main_alive);
}

void sigpend_after_fork() {
  for (auto& s : g_slots) s.state.store(kFree, std::memory_order_relaxed);
  sigpend_count.store(0, std::memory_order_relaxed);
}

}  // namespace mnp
