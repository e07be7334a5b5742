// interpose/signal.cpp — the program's signal handlers and the runtime.
//
// 1. The runtime's signal. sysmon signals Ms with MNP_SIGNAL (SIGURG by
// default). The program may use that signal too, so the runtime's handler
// stays installed and the program's own action is recorded instead:
// sigaction and signal report and change that recorded action, and the
// runtime's handler passes every delivery that sysmon did not send on to it.
// Masks never block the signal in the kernel (a blocked M could be neither
// preempted nor found blocked): a G that blocks it reads its mask back
// with that bit (G::sigmask), and its own instances of the signal that
// arrive meanwhile wait in its pending set (core/sigpend.h) until it
// unblocks them.
//
// 2. EINTR. Natively a handler that runs while a thread is blocked in poll,
// select, epoll_wait — or in read, write, accept and the like when the
// handler lacks SA_RESTART — makes that call fail with EINTR; programs rely
// on it to leave their event loops on SIGINT or SIGTERM. Under the shim
// such a thread is a G parked in the netpoller and the signal runs on some
// M. So every handler the program installs is wrapped: the kernel runs
// `trampoline`, which calls the program's handler exactly as installed
// (same flags and mask, SA_SIGINFO or not) and then tells the netpoller,
// which interrupts one waiting G — the main G, else any (netpoll.h; a
// semaphore or futex wait by the kernel's futex rule, core/sema.h); a
// signal sent to one G (pthread_kill, tgkill) is kept for that G, which
// runs the handler itself (core/sigpend.h, interpose/tid.cpp). sigaction and signal report the program's
// own handler, never the trampoline. Synchronous faults (SIGSEGV and the
// like raised by an instruction) interrupt nothing, as natively.
//
// 4. Masks are per G (core/sigmask.cpp): sigprocmask and pthread_sigmask
// on a G change that G's mask, and run at once what it unblocked and has
// pending; sigpending adds what waits for the G; raise and the sigwait
// family on a G go through its pending set (sig_send_to_g, sigpend.h).
//
// 3. Only Gs run handlers. The trampoline that finds itself on an M's g0
// (an idle M, the netpoller, the scheduler) runs nothing there: it keeps
// the signal for a G (core/sigpend.h). sysmon never gets one: it is born
// with every signal blocked.
//
// 5. A default action every G blocks. An M between Gs blocks what every
// live G blocked when it went to sleep (core/sigmask.cpp); once the last G
// that let a signal in blocks it, an M asleep since still lets it in, and
// a kill of the process right then ran the default action there: the
// process ended on a signal that natively stays pending. Telling each such
// M takes a signal to it and a wait for its answer (tried: SBCL, whose
// threads block signals all the time, broke). Instead, at that moment, a
// signal whose action is SIG_DFL gets `dfl_guard` as its kernel action,
// which takes effect for every thread at once: while every G blocks the
// signal the guard keeps it for the process, as the trampoline keeps a
// handler's (a sigwait, a signalfd read or an unblock takes it), and
// otherwise carries out the default action itself (SIG_DFL put back and
// the signal sent again; one whose default is to ignore it is dropped).
// The program still sees SIG_DFL. Synchronous faults' signals are never
// guarded.
#include <errno.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/poke.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/sigpend.h"
#include "interpose/blocking.h"
#include "interpose/real.h"

using namespace mnp;

namespace {
using MaskFn = int(int, const sigset_t*, sigset_t*);

constexpr int kNsig = 65;

// The program's action for one signal, as it gave it. Records are never
// changed once published and are recycled only after kRecords more
// sigaction calls, so the trampoline reads a consistent handler and flags
// without a lock (a lock could be held by the very thread it interrupted).
struct Record {
  void* handler;
  int flags;
  sigset_t mask;
};
constexpr uint32_t kRecords = 1024;
MNP_COLD_BSS Record g_records[kRecords];
std::atomic<uint32_t> g_next_record{0};

struct ProgAction {
  std::atomic<const Record*> rec{nullptr};
  std::atomic<bool> wrapped{false};  // the kernel runs the trampoline for it
};
ProgAction g_prog[kNsig];
// Signals siginterrupt() made interrupting: signal() installs them without
// SA_RESTART (glibc's rule).
std::atomic<uint64_t> g_sigintr{0};

bool fault_signal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

// Sent to one thread rather than to the process: raise, tgkill of a G to
// itself, a fault, the kernel's SIGPIPE/SIGXFSZ for a write. Natively
// those interrupt no other thread's call.
bool thread_directed(int sig, const siginfo_t* si) {
  if (!si) return false;
  if (si->si_code == SI_TKILL) return true;
  if (fault_signal(sig) && si->si_code > 0) return true;
  return (sig == SIGPIPE || sig == SIGXFSZ) && si->si_code == SI_USER && si->si_pid == raw_syscall(SYS_getpid);
}

void* handler_of(const struct sigaction* act) {
  return (act->sa_flags & SA_SIGINFO) ? reinterpret_cast<void*>(act->sa_sigaction)
                                      : reinterpret_cast<void*>(act->sa_handler);
}

void dfl_guard(int sig, siginfo_t* si, void* uc);

// The guard (5 above): g_dfl_guarded (core/sched.h) has bit sig-1 while
// the kernel's action for sig is dfl_guard; this one while it was SIG_IGN
// at the last look.
std::atomic<uint64_t> g_ign_seen{0};
// The SIG_DFL action each guard stands in for (sigaction reports it).
MNP_COLD_BSS struct sigaction g_guard_prev[kNsig];

uint64_t sig_bit64(int sig) { return uint64_t{1} << (sig - 1); }

bool default_ignores(int sig) { return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH; }

bool guardable(int sig) {
  return sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33 && !fault_signal(sig) && !poke_signal_reserved(sig);
}

SigAct dfl_act() { return SigAct{reinterpret_cast<void*>(SIG_DFL), 0, {}}; }

// The default action of a guarded signal that some thread lets in: as
// the kernel would have run it. The guard goes (until every G blocks the
// signal again): as a handler it could end a call of a G's with EINTR,
// which the default action never does.
void default_now(int sig, siginfo_t* si) {
  struct sigaction dfl = g_guard_prev[sig], was;  // SIG_DFL, with the program's flags
  g_dfl_guarded.fetch_and(~sig_bit64(sig), std::memory_order_acq_rel);
  if (real_sigaction(sig, &dfl, &was) != 0) return;
  // The program put an action of its own meanwhile: that one takes it.
  if (handler_of(&was) != reinterpret_cast<void*>(dfl_guard)) real_sigaction(sig, &was, nullptr);
  else if (default_ignores(sig)) return;
  long pid = raw_syscall(SYS_getpid);
  // Sent to this thread (abort's SIGABRT, a raise): again to it, with its
  // siginfo (the kernel takes any from a thread to itself), once its
  // handler returns. Else to the process: a thread that lets it in (this
  // one, if no other) takes it.
  if (thread_directed(sig, si)) raw_syscall(SYS_rt_tgsigqueueinfo, pid, raw_gettid(), sig, reinterpret_cast<long>(si));
  else raw_syscall(SYS_kill, pid, sig);
}

void dfl_guard(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  if (tls_vfork_child) {
    // A vfork child shares the parent's memory but has dispositions of its
    // own: the default action, for the child alone.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    real_sigaction(sig, &dfl, nullptr);
    if (!default_ignores(sig)) raw_syscall(SYS_tgkill, raw_syscall(SYS_getpid), raw_gettid(), sig);
    return;
  }
  siginfo_t first;
  if (runtime_up && m_signal_defer(sig, &si, &first)) return;  // comes back here
  G* g = tls_g;
  // A wrapped call it interrupted ends with the runtime's EINTR: the
  // default action never ends one.
  if (g && !g->is_g0 && runtime_up) g->runtime_eintr.store(1, std::memory_order_relaxed);
  if (runtime_up && g) {
    bool on_g = !g->is_g0 && !g->exiting;
    if (on_g && g_blocks(g, sig) && thread_directed(sig, si)) {
      sigpend_put_for(g, sig, si, dfl_act());
      return;
    }
    if ((!on_g || g_blocks(g, sig)) && sig_blocked_by_all_gs(sig)) {
      sigpend_put(sig, si, dfl_act());
      return;
    }
  }
  default_now(sig, si);
}

// sig's kernel action becomes the guard if it is SIG_DFL: looked at first,
// so that the guard carries what SIGCHLD's action says of stopped and
// exited children from the start; put back if the program's own action
// came in between.
void guard_install(int sig) {
  uint64_t bit = sig_bit64(sig);
  struct sigaction cur, was;
  if (real_sigaction(sig, nullptr, &cur) != 0) return;
  void* h = handler_of(&cur);
  if (h == reinterpret_cast<void*>(SIG_IGN)) g_ign_seen.fetch_or(bit, std::memory_order_relaxed);
  if (h != reinterpret_cast<void*>(SIG_DFL)) return;
  struct sigaction guard = {};
  guard.sa_sigaction = dfl_guard;
  guard.sa_flags = SA_SIGINFO | SA_RESTART | (cur.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
  sigemptyset(&guard.sa_mask);
  g_guard_prev[sig] = cur;
  g_dfl_guarded.fetch_or(bit, std::memory_order_acq_rel);
  if (real_sigaction(sig, &guard, &was) != 0) {
    g_dfl_guarded.fetch_and(~bit, std::memory_order_acq_rel);
    return;
  }
  void* w = handler_of(&was);
  if (w == reinterpret_cast<void*>(SIG_DFL) || w == reinterpret_cast<void*>(dfl_guard)) return;
  g_dfl_guarded.fetch_and(~bit, std::memory_order_acq_rel);
  struct sigaction mid;
  real_sigaction(sig, &was, &mid);
  if (handler_of(&mid) != reinterpret_cast<void*>(dfl_guard)) real_sigaction(sig, &mid, nullptr);
}

// core/sigmask.cpp: every live G has just come to block `bits`.
void all_block(uint64_t bits) {
  bits &= ~(g_dfl_guarded.load(std::memory_order_acquire) | g_ign_seen.load(std::memory_order_relaxed));
  for (; bits; bits &= bits - 1) {
    int sig = __builtin_ctzll(bits) + 1;
    if (guardable(sig) && !g_prog[sig].wrapped.load(std::memory_order_acquire)) guard_install(sig);
  }
}

void trampoline(int sig, siginfo_t* si, void* uc) {
  if (MNP_UNLIKELY(sig == SIGSYS) && seccomp_refused_by_runtime(sig, si, uc)) return;
  ProgAction& a = g_prog[sig];
  const Record* r = a.rec.load(std::memory_order_acquire);
  // Not inside the runtime's locks: held back until the M leaves them
  // (core/futex.h, Lock), then it comes back here with its first siginfo.
  // A fault cannot wait: the instruction would only fault again.
  siginfo_t first;
  bool fault = fault_signal(sig) && si && si->si_code > 0;
  if (runtime_up && !fault && m_signal_defer(sig, &si, &first)) {
    // The kernel put SIG_DFL back for a one-shot handler: put the
    // trampoline back until the raise that comes later has run it.
    if (r && (r->flags & SA_RESETHAND)) {
      struct sigaction again = {};
      again.sa_sigaction = trampoline;
      again.sa_flags = r->flags | SA_SIGINFO;
      again.sa_mask = r->mask;
      real_sigaction(sig, &again, nullptr);
    }
    return;
  }
  if (!r) return;
  // With SA_RESETHAND the kernel has put SIG_DFL back already.
  if (r->flags & SA_RESETHAND) a.wrapped.store(false, std::memory_order_relaxed);
  // An M between Gs (idle, in the netpoller, scheduling) is no program
  // thread: a G runs the handler (core/sigpend.h). A fault there is the
  // runtime's own bug; it runs where it happened.
  G* g = tls_g;
  if (g && g->is_g0 && runtime_up && !(fault_signal(sig) && si && si->si_code > 0)) {
    sigpend_put(sig, si, SigAct{r->handler, r->flags, r->mask});
    return;
  }
  // A G that blocks it (the kernel gave it to the M for another G's
  // mask: a raise just before a switch): pending, for this G if it was
  // sent to this thread.
  if (g && runtime_up && !fault && g_blocks(g, sig)) {
    sigpend_put_for(thread_directed(sig, si) ? g : nullptr, sig, si, SigAct{r->handler, r->flags, r->mask});
    return;
  }
  // The kernel mask while it runs is no G's: the next switch on this M
  // sets it; sigreturn puts back uc_sigmask, recorded after the handler.
  if (g && runtime_up) g->m->kmask = kKmaskUnknown;
  // Counted from here to the end: the stack below a park in it may be live
  // (gmem_shrink_parked), and so may a malloc it interrupted (core/mcache.h).
  bool counted = g && runtime_up && !g->is_g0;
  if (counted) g->in_handler++;
  // The G's mask while it runs is the kernel's (the trampoline has the
  // action's mask and flags): SBCL's handlers check that it blocks what
  // they installed them with, and died of "blockables unblocked".
  auto* ucp = static_cast<ucontext_t*>(uc);
  sigset_t was;
  if (counted) uc_show_g_view(ucp, g->sigmask);
  uint64_t uc_was = sigset_bits(&ucp->uc_sigmask);
  if (counted) was = g_handler_mask_begin(g, &g->sigmask, sig, &r->mask, r->flags);
  // In a wrapped call the G has no P: the handler gets one (sched.h).
  int depth = g && runtime_up && !fault ? handler_begin(g) : 0;
  if (counted) g->handlers_run++;
  // A handler may unwind or longjmp from here: not through the return hook.
  if (counted) ret_hook_drop(g, ucp);
  if (r->flags & SA_SIGINFO) reinterpret_cast<void (*)(int, siginfo_t*, void*)>(r->handler)(sig, si, uc);
  else reinterpret_cast<void (*)(int)>(r->handler)(sig);
  if (depth) handler_end(g, depth);
  if (counted) {
    g_handler_mask_end(g, was, uc_was, ucp);
    uc_hide_g_view(ucp);
  }
  // g->m: the M the G runs on now, whose thread sigreturn sets the mask of.
  if (g && runtime_up) g->m->kmask = sigset_bits(&static_cast<ucontext_t*>(uc)->uc_sigmask);
  // A wait of the thread the kernel prefers (the main G) owes an EINTR,
  // unless the handler ran on that very G.
  if (runtime_up && !thread_directed(sig, si) && !(g && g == netpoll_signal_main()))
    netpoll_signal_arrived(sig, (r->flags & SA_RESTART) != 0);
  // On a G: take along any handler still waiting for one.
  if (g && !g->is_g0 && sigpend_any()) sigpend_run(uc, &static_cast<ucontext_t*>(uc)->uc_sigmask);
  if (counted) g->in_handler--;
  // Back to the interrupted code: a SIGCANCEL that landed in this
  // trampoline (the runtime's code) acts there now (core/cancel.h).
  if (g && !g->is_g0 && runtime_up) cancel_async_point(g, static_cast<ucontext_t*>(uc));
}

// A jump out of a handler with a saved mask (siglongjmp; longjmp and
// _longjmp are the same function in glibc): glibc puts the mask back in the
// kernel with a sigprocmask of its own, which no interposer sees. The G's
// own mask, the handler's until then (the trampoline), takes it too;
// otherwise the G kept blocking the signal whose handler jumped, and the
// next fault of a program that recovers from faults so was fatal.
void jmp_restore_mask(const struct __jmp_buf_tag* env) {
  G* g = tls_g;
  if (!g || g->is_g0 || !runtime_up || !env->__mask_was_saved) return;
  g_sigmask_set(g, &env->__saved_mask);
  g->m->kmask = kKmaskUnknown;  // the kernel's is glibc's to set now
}

// A held-back signal that its M blocks by the time the hold ends
// (m_signal_redeliver): kept as above for a G that blocks it.
void keep_blocked(int sig, const siginfo_t* si) {
  const Record* r = g_prog[sig].rec.load(std::memory_order_acquire);
  bool guarded = !g_prog[sig].wrapped.load(std::memory_order_acquire) &&
                 (g_dfl_guarded.load(std::memory_order_acquire) & sig_bit64(sig));
  if (!r && !guarded) return;
  G* g = tls_g;
  bool own = g && !g->is_g0 && thread_directed(sig, si);
  sigpend_put_for(own ? g : nullptr, sig, si, guarded ? dfl_act() : SigAct{r->handler, r->flags, r->mask});
}

void fill_from(const Record* r, struct sigaction* out) {
  *out = {};
  if (r->flags & SA_SIGINFO) out->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(r->handler);
  else out->sa_handler = reinterpret_cast<void (*)(int)>(r->handler);
  out->sa_flags = r->flags;
  out->sa_mask = r->mask;
}

// The runtime's signal was set up after a constructor installed a handler
// for it, which the kernel knows as the trampoline: the program's own.
void unwrap_for_poke(int sig, struct sigaction* act) {
  if (sig < 1 || sig >= kNsig) return;
  if (handler_of(act) == reinterpret_cast<void*>(dfl_guard)) {
    *act = g_guard_prev[sig];
    return;
  }
  if (!g_prog[sig].wrapped.load(std::memory_order_acquire)) return;
  if (const Record* r = g_prog[sig].rec.load(std::memory_order_acquire)) fill_from(r, act);
  g_prog[sig].wrapped.store(false, std::memory_order_release);
}

// On a G: the G's own mask (core/sigmask.cpp); returns 0 or EINVAL.
// Elsewhere (a thread mnpthread did not create, or before the runtime
// runs): the kernel's, without ever blocking the runtime's signal.
int set_mask(MaskFn* real, int how, const sigset_t* set, sigset_t* old) {
  if (tls_vfork_child) return real(how, set, old);  // the child's own mask, exactly as asked
  if (tls_unwinding) {
    // libunwind during a safe-point walk, inside the runtime's handler,
    // whose mask blocks everything already; it only ever puts back what
    // it was told.
    if (old) sigfillset(old);
    return 0;
  }
  G* g = get_user_g();
  if (!g || !runtime_up) {
    if (!set || how == SIG_UNBLOCK) return real(how, set, old);
    sigset_t s = *set;
    for (int sig = 1; sig < 65; sig++)
      if (poke_signal_is(sig)) sigdelset(&s, sig);
    return real(how, &s, old);
  }
  sigset_t was = g->sigmask;
  if (set) {
    sigset_t now = was;
    if (how == SIG_BLOCK) sigorset(&now, &was, set);
    else if (how == SIG_UNBLOCK)
      for (int sig = 1; sig < 65; sig++) {
        if (sigismember(set, sig) == 1) sigdelset(&now, sig);
      }
    else if (how == SIG_SETMASK) now = *set;
    else return EINVAL;
    g_sigmask_set(g, &now);
    g_load_kmask(g);
    // What it unblocked and has pending runs now, before the call returns.
    if (sigpend_any() && (sigset_bits(&was) & ~sigset_bits(&g->sigmask))) sigpend_run(nullptr, nullptr);
  }
  if (old) *old = was;
  return 0;
}

// The program's action for sig, for sig_send_to_g.
void action_for(int sig, SigAct* out) {
  struct sigaction o = {};
  if (poke_signal_is(sig)) {
    poke_user_action(nullptr, &o);
  } else if (const Record* r = g_prog[sig].wrapped.load(std::memory_order_acquire)
                                   ? g_prog[sig].rec.load(std::memory_order_acquire)
                                   : nullptr) {
    *out = SigAct{r->handler, r->flags, r->mask};
    return;
  } else if (real_sigaction(sig, nullptr, &o) != 0) {
    return;
  }
  if (handler_of(&o) == reinterpret_cast<void*>(dfl_guard)) o = g_guard_prev[sig];
  *out = SigAct{handler_of(&o), o.sa_flags, o.sa_mask};
}

// sigwait and sigsuspend on a G: `bits` are the signals the call takes
// (G::sigwait_bits, for pthread_kill). Returns the signal already pending
// for the G among them (*si filled), or 0 with the flag left set.
int sigwait_begin(G* g, uint64_t bits, siginfo_t* si) {
  g->sigwait_bits.store(bits, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the flag before the look (sig_send_to_g)
  int got = sigpend_take_in(g, bits, si);
  if (got) g->sigwait_bits.store(0, std::memory_order_release);
  return got;
}

// The call itself, handed off (its M blocks in the kernel with the G's
// mask) through the blocking path, made again after the runtime's EINTR
// unless `retake` (run then) returns a result instead.
template <typename Call, typename Retake = NoRetake>
int sigwait_call(G* g, const Call& call, const Retake& retake = {}) {
  int r = blocking_call<Enter::kBlock>(call, retake);
  g->sigwait_bits.store(0, std::memory_order_release);
  return r;
}

uint64_t set_bits(const sigset_t* s) { return sigset_bits(s) & ~((1ULL << 31) | (1ULL << 32)); }

// The sigwait family on a G: a signal already pending for it (its own or
// the process's), else the kernel call, handed off, with the runtime's
// signal left out of its set: the program's own instances of that signal
// reach the G through the slots (core/poke.cpp, keep_pending), and
// sysmon's must never be taken for the program's. The runtime's EINTR (a
// slot kept for this wait meanwhile, or sysmon) looks at the slots again
// before the call is made again.
// A siginfo taken from a slot, as glibc's sigtimedwait hands one out: it
// folds the kernel's SI_TKILL (pthread_kill, raise) into SI_USER.
void give_info(siginfo_t* info, const siginfo_t& si) {
  if (!info) return;
  *info = si;
  if (info->si_code == SI_TKILL) info->si_code = SI_USER;
}

int sigwait_on_g(G* g, const sigset_t* set, siginfo_t* info, const struct timespec* timeout) {
  uint64_t bits = set_bits(set);
  siginfo_t si;
  if (int got = sigwait_begin(g, bits, &si)) {
    give_info(info, si);
    return got;
  }
  sigset_t kset = *set;
  for (int sig = 1; sig < 65; sig++)
    if (poke_signal_is(sig)) sigdelset(&kset, sig);
  auto call = [&] {
    // A slot kept since the last look, its kick perhaps already taken (it
    // came before the call): the runtime's EINTR. (A kick between this
    // look and the kernel's entry is lost; known gap 28.)
    if (sigpend_bits_for(g) & bits) {
      g->runtime_eintr.store(1, std::memory_order_relaxed);
      errno = EINTR;
      return -1;
    }
    return real_sigtimedwait(&kset, info, timeout);
  };
  auto retake = [&] {
    int got = sigpend_take_in(g, bits, &si);
    if (got) give_info(info, si);
    return got;
  };
  return sigwait_call(g, call, retake);
}

// sigsuspend's real call, on the G's M after entersyscall. The G's mask has
// been the call's since g_call_mask_begin, so the kernel could run a handler
// on the G before the call sleeps: it would then sleep through the very
// signal it waits for. Blocked at the kernel until the call sets its mask,
// a signal from now on lands inside the call; one that ran before ends it.
int held_sigsuspend(const sigset_t* mask, const CallMask* cm, uint64_t through) {
  G* g = get_user_g();
  if (!g_call_mask_hold(g, *cm)) {
    errno = EINTR;  // sigsuspend's own result
    return -1;
  }
  // A slot put since the wait last looked, whose kick landed in this code
  // and was dropped: the runtime's EINTR now, rather than at sysmon's next
  // kick.
  if (sigpend_bits_for(g) & through) {
    g->runtime_eintr.store(1, std::memory_order_relaxed);
    errno = EINTR;
    return -1;
  }
  // The runtime's signal stays open during the call whatever the program's
  // mask: a pthread_kill to this G puts a slot and ends the call with it
  // (core/sigpend.cpp, sig_send_to_g), as do sysmon's kicks.
  sigset_t kernel_mask = *mask;
  if (int ps = poke_signal_number(); ps > 0) sigdelset(&kernel_mask, ps);
  return real_sigsuspend(&kernel_mask);
}

// The runtime gave its signal back (core/poke.cpp, poke_signal_release):
// the program's recorded action goes on it the way sigaction puts one.
void rewrap_released(int sig, const struct sigaction* act) { sigaction(sig, act, nullptr); }
}  // namespace

namespace mnp {
MNP_STARTUP void interpose_signal_init() {
  set_poke_rewrap_hook(rewrap_released);
  set_poke_unwrap_hook(unwrap_for_poke);
  set_sigact_hook(action_for);
  set_sig_keep_hook(keep_blocked);
  set_all_block_hook(all_block);
}
}  // namespace mnp

extern "C" {

MNP_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (tls_vfork_child) return real_sigaction(sig, act, old);  // the child's own dispositions
  if (poke_signal_is(sig)) {
    poke_user_action(act, old);
    return 0;
  }
  if (sig < 1 || sig >= kNsig) return real_sigaction(sig, act, old);
  ProgAction& a = g_prog[sig];
  struct sigaction prev;
  const Record* was = a.rec.load(std::memory_order_acquire);
  if (a.wrapped.load(std::memory_order_acquire) && was) {
    fill_from(was, &prev);
  } else if (int r = real_sigaction(sig, nullptr, &prev); r != 0) {
    return r;  // EINVAL for a signal that cannot be caught or queried
  } else if (handler_of(&prev) == reinterpret_cast<void*>(dfl_guard)) {
    prev = g_guard_prev[sig];  // the program's SIG_DFL
  }
  if (act) {
    void* h = handler_of(act);
    uint64_t bit = sig_bit64(sig);
    if (h == reinterpret_cast<void*>(SIG_DFL) || h == reinterpret_cast<void*>(SIG_IGN)) {
      if (int r = real_sigaction(sig, act, nullptr); r != 0) return r;
      a.wrapped.store(false, std::memory_order_release);
      g_dfl_guarded.fetch_and(~bit, std::memory_order_acq_rel);
      if (h == reinterpret_cast<void*>(SIG_IGN)) g_ign_seen.fetch_or(bit, std::memory_order_relaxed);
      else g_ign_seen.fetch_and(~bit, std::memory_order_relaxed);
      // Set back to SIG_DFL while every G blocks it: guarded again.
      if (h == reinterpret_cast<void*>(SIG_DFL) && runtime_up && guardable(sig) && sig_blocked_by_all_gs(sig))
        guard_install(sig);
    } else {
      // Publish the program's action before the kernel can run the
      // trampoline for it; glibc refuses its internal signals and
      // SIGKILL/SIGSTOP, so keep it only if the kernel took the trampoline.
      Record* rec = &g_records[g_next_record.fetch_add(1, std::memory_order_relaxed) % kRecords];
      rec->handler = h;
      rec->flags = act->sa_flags;
      rec->mask = act->sa_mask;
      a.rec.store(rec, std::memory_order_release);
      struct sigaction ours = *act;
      ours.sa_sigaction = trampoline;
      ours.sa_flags |= SA_SIGINFO;
      if (int r = real_sigaction(sig, &ours, nullptr); r != 0) {
        a.rec.store(was, std::memory_order_release);
        return r;
      }
      a.wrapped.store(true, std::memory_order_release);
      g_dfl_guarded.fetch_and(~bit, std::memory_order_acq_rel);
      g_ign_seen.fetch_and(~bit, std::memory_order_relaxed);
    }
    bool handler = h != reinterpret_cast<void*>(SIG_DFL) && h != reinterpret_cast<void*>(SIG_IGN);
    sig_note_norestart(sig, handler && !(act->sa_flags & SA_RESTART));
  }
  if (old) *old = prev;
  return 0;
}

// BSD semantics, as glibc's signal(): SA_RESTART unless siginterrupt said
// otherwise for this signal.
MNP_EXPORT sighandler_t signal(int sig, sighandler_t handler) noexcept {
  if (handler == SIG_ERR || sig < 1 || sig >= kNsig) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction sa = {}, old = {};
  sa.sa_handler = handler;
  sa.sa_flags = (g_sigintr.load(std::memory_order_relaxed) >> sig) & 1 ? 0 : SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, sig);
  if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

MNP_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) noexcept { return signal(sig, handler); }

// System V semantics: one-shot, not blocked while it runs, not restarting.
MNP_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) noexcept {
  if (handler == SIG_ERR || sig < 1 || sig >= kNsig) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction sa = {}, old = {};
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

// glibc's changes the kernel's flags behind the program's recorded action.
MNP_EXPORT int siginterrupt(int sig, int interrupt) noexcept {
  struct sigaction sa;
  if (sig < 1 || sig >= kNsig || sigaction(sig, nullptr, &sa) != 0) {
    errno = EINVAL;
    return -1;
  }
  if (interrupt) {
    g_sigintr.fetch_or(1ULL << sig, std::memory_order_relaxed);
    sa.sa_flags &= ~SA_RESTART;
  } else {
    g_sigintr.fetch_and(~(1ULL << sig), std::memory_order_relaxed);
    sa.sa_flags |= SA_RESTART;
  }
  return sigaction(sig, &sa, nullptr);
}

}  // extern "C"

namespace mnp {
// Flags of the program's handler for sig, or -1 when it has none wrapped.
int program_signal_flags(int sig) {
  if (sig < 1 || sig >= kNsig || !g_prog[sig].wrapped.load(std::memory_order_acquire)) return -1;
  const Record* r = g_prog[sig].rec.load(std::memory_order_acquire);
  return r ? r->flags : -1;
}
// The program's handler for sig, as for program_signal_flags.
bool program_signal_action(int sig, SigAct* out) {
  if (sig < 1 || sig >= kNsig || !g_prog[sig].wrapped.load(std::memory_order_acquire)) return false;
  const Record* r = g_prog[sig].rec.load(std::memory_order_acquire);
  if (!r) return false;
  *out = SigAct{r->handler, r->flags, r->mask};
  return true;
}
}  // namespace mnp

extern "C" {

MNP_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  int r = set_mask(real_sigprocmask, how, set, old);
  if (r > 0) {  // EINVAL from a G's mask
    errno = r;
    return -1;
  }
  return r;
}

MNP_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return set_mask(real_pthread_sigmask, how, set, old);
}

// The BSD and System V mask calls. glibc's make their sigprocmask and
// sigaction calls inside libc, past the interposers: the G's recorded mask
// did not change, and the next sigprocmask answered with the stale one
// (dash clears its mask with sigsetmask(0) after a vfork, then blocked
// everything, got "everything" back as its old mask and sigsuspended on
// it for ever: `wait` of a background job hung, SIGTERM could not end it).
// Same results and errors as glibc's.
namespace {
int bsd_mask(int how, int mask) {
  sigset_t set, old;
  sigemptyset(&set);
  set.__val[0] = static_cast<unsigned int>(mask);
  if (sigprocmask(how, &set, &old) < 0) return -1;
  return static_cast<int>(old.__val[0]);
}
// One signal into or out of the mask; EINVAL for a number sigaddset rejects.
int one_signal(int how, int sig) {
  sigset_t set;
  sigemptyset(&set);
  if (sigaddset(&set, sig) < 0) return -1;
  return sigprocmask(how, &set, nullptr);
}
}  // namespace

MNP_EXPORT int sigsetmask(int mask) noexcept { return bsd_mask(SIG_SETMASK, mask); }
MNP_EXPORT int sigblock(int mask) noexcept { return bsd_mask(SIG_BLOCK, mask); }
MNP_EXPORT int siggetmask(void) noexcept {
  sigset_t old;
  if (sigprocmask(SIG_BLOCK, nullptr, &old) < 0) return -1;
  return static_cast<int>(old.__val[0]);
}
MNP_EXPORT int sighold(int sig) noexcept { return one_signal(SIG_BLOCK, sig); }
MNP_EXPORT int sigrelse(int sig) noexcept { return one_signal(SIG_UNBLOCK, sig); }

MNP_EXPORT int sigignore(int sig) noexcept {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  return sigaction(sig, &sa, nullptr);
}

// System V: SIG_HOLD blocks the signal; any other disposition is
// installed (no flags, empty mask) and the signal unblocked. The result is
// SIG_HOLD if the signal was blocked, else the previous disposition.
MNP_EXPORT sighandler_t sigset(int sig, sighandler_t disp) noexcept {
  sigset_t set, old;
  sigemptyset(&set);
  if (sigaddset(&set, sig) < 0) return SIG_ERR;
  struct sigaction oact = {};
  if (disp == SIG_HOLD) {
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0) return SIG_ERR;
    if (sigismember(&old, sig)) return SIG_HOLD;
    if (sigaction(sig, nullptr, &oact) < 0) return SIG_ERR;
    return oact.sa_handler;
  }
  struct sigaction act = {};
  act.sa_handler = disp;
  if (sigaction(sig, &act, &oact) < 0) return SIG_ERR;
  if (sigprocmask(SIG_UNBLOCK, &set, &old) < 0) return SIG_ERR;
  return sigismember(&old, sig) ? SIG_HOLD : oact.sa_handler;
}

// sigsuspend with the mask made from the current one: without sig
// (X/Open, is_sig) or the BSD mask word.
MNP_EXPORT int __sigpause(int sig_or_mask, int is_sig) {
  sigset_t set;
  if (is_sig) {
    if (sigprocmask(SIG_BLOCK, nullptr, &set) < 0 || sigdelset(&set, sig_or_mask) < 0) return -1;
  } else {
    sigemptyset(&set);
    set.__val[0] = static_cast<unsigned int>(sig_or_mask);
  }
  return sigsuspend(&set);
}
// <signal.h> names __xpg_sigpause for sigpause here (_GNU_SOURCE): the
// BSD entry is defined under its own symbol name.
MNP_EXPORT int mnp_bsd_sigpause(int mask) __asm__("sigpause");
MNP_EXPORT int mnp_bsd_sigpause(int mask) { return __sigpause(mask, 0); }
MNP_EXPORT int __xpg_sigpause(int sig) { return __sigpause(sig, 1); }

}  // extern "C"

extern "C" {

MNP_EXPORT int sigpending(sigset_t* set) noexcept {
  if (int r = real_sigpending(set); r != 0) return r;
  // What waits for this G among what it blocks (the rest is about to run).
  if (G* g = get_user_g(); g && runtime_up) set->__val[0] |= sigpend_bits_for(g) & sigset_bits(&g->sigmask);
  return 0;
}

MNP_EXPORT int raise(int sig) noexcept {
  G* g = get_user_g();
  if (!g || !runtime_up || sig < 1 || sig >= kNsig) return real_raise(sig);
  if (int r = sig_send_to_g(g, sig); r != 0) {
    errno = r;
    return -1;
  }
  return 0;
}

MNP_EXPORT int sigwait(const sigset_t* set, int* sig) {
  G* g = get_user_g();
  if (!g || !runtime_up || null_arg(set)) return real_sigwait(set, sig);
  // glibc's sigwait: sigtimedwait until it returns something but EINTR.
  int e = errno, r;
  siginfo_t si;
  do r = sigwait_on_g(g, set, &si, nullptr);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    r = errno;
    errno = e;
    return r;
  }
  errno = e;
  *sig = r;
  return 0;
}

MNP_EXPORT int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  G* g = get_user_g();
  if (!g || !runtime_up || null_arg(set)) return real_sigwaitinfo(set, info);
  return sigwait_on_g(g, set, info, nullptr);
}

MNP_EXPORT int sigtimedwait(const sigset_t* set, siginfo_t* info, const struct timespec* timeout) {
  G* g = get_user_g();
  if (!g || !runtime_up || null_arg(set)) return real_sigtimedwait(set, info, timeout);
  // The kernel checks the timeout before it looks for a pending signal.
  if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) {
    errno = EINVAL;
    return -1;
  }
  return sigwait_on_g(g, set, info, timeout);
}

// The G's pending handlers that the temporary mask lets through run at
// once (EINTR, as natively); the kernel runs what comes during the call.
// The mask is the G's own while it waits, as the kernel makes it the
// thread's: a handler the kernel runs meanwhile (on this G's M, or kept by
// the trampoline for a G that blocks the signal) finds the G letting it
// through and runs before the call returns. With the G's mask left as it
// was, a signal the program blocks and sigsuspends for (lbzip2) ended the
// kernel call but its handler stayed pending, and the program read its
// flag before the handler had run.
MNP_EXPORT int sigsuspend(const sigset_t* mask) {
  G* g = get_user_g();
  if (!g || !runtime_up || null_arg(mask)) return real_sigsuspend(mask);
  uint64_t through = ~sigset_bits(mask) & ~((1ULL << 31) | (1ULL << 32));
  CallMask cm;
  bool ran = g_call_mask_begin(g, mask, &cm);
  int r = -1, e = errno;
  // Natively sigsuspend returns only once a handler ran (or with an
  // error): a call that the runtime's own signal ended — sysmon's kick for
  // a slot that another G took first — or a pending slot taken meanwhile
  // by another G leaves it waiting.
  while (!ran) {
    // Set before the look at the pending slots: a sender that finds no flag
    // leaves a slot, which the look sees (sigwait_begin).
    g->sigwait_bits.store(through, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the flag before the look (sig_send_to_g)
    bool pending = (sigpend_bits_for(g) & through) != 0;
    if (!pending) {
      // After the runtime's EINTR, a slot kept for it meanwhile (its kick
      // is what ended the call) is looked at below, not slept through.
      r = sigwait_call(
          g, [&] { return held_sigsuspend(mask, &cm, through); },
          [&] {
            if (!(sigpend_bits_for(g) & through)) return 0;
            errno = EINTR;
            return -1;
          });
      e = errno;
    }
    g->sigwait_bits.store(0, std::memory_order_release);
    if (sigpend_any()) sigpend_run(nullptr, nullptr);  // kept for this G meanwhile, under the call's mask
    if (g->handlers_run != cm.ran || (!pending && !(r == -1 && e == EINTR))) break;
  }
  g_call_mask_end(g, cm);
  errno = r == -1 && g->handlers_run != cm.ran ? EINTR : e;
  return r;
}

}  // extern "C"

extern "C" MNP_EXPORT void siglongjmp(sigjmp_buf env, int val) noexcept {
  jmp_restore_mask(env);
  real_siglongjmp(env, val);
  __builtin_unreachable();
}
extern "C" MNP_EXPORT void longjmp(jmp_buf env, int val) noexcept {
  jmp_restore_mask(env);
  real_longjmp(env, val);
  __builtin_unreachable();
}
extern "C" MNP_EXPORT void _longjmp(jmp_buf env, int val) noexcept {
  jmp_restore_mask(env);
  real__longjmp(env, val);
  __builtin_unreachable();
}
extern "C" MNP_EXPORT void __longjmp_chk(struct __jmp_buf_tag env[1], int val) noexcept {
  jmp_restore_mask(env);
  real___longjmp_chk(env, val);
  __builtin_unreachable();
}
