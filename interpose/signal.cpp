// interpose/signal.cpp — the program's signal handlers and the runtime.
//
// 1. The runtime's signal. sysmon signals Ms with MNP_SIGNAL (SIGURG by
// default). The program may use that signal too, so the runtime's handler
// stays installed and the program's own action is recorded instead:
// sigaction and signal report and change that recorded action, and the
// runtime's handler passes every delivery that sysmon did not send on to it.
// Masks never block the signal on an M (a blocked M could be neither
// preempted nor found blocked): a program that blocks it reads the mask
// back without that bit, and its own instances of the signal are delivered
// to its handler even while "blocked". That is one departure from native
// behaviour (README, known limits).
//
// 2. EINTR. Natively a handler that runs while a thread is blocked in poll,
// select, epoll_wait — or in read, write, accept and the like when the
// handler lacks SA_RESTART — makes that call fail with EINTR; programs rely
// on it to leave their event loops on SIGINT or SIGTERM. Under the shim
// such a thread is a G parked in the netpoller and the signal runs on some
// M. So every handler the program installs is wrapped: the kernel runs
// `trampoline`, which calls the program's handler exactly as installed
// (same flags and mask, SA_SIGINFO or not) and then tells the netpoller,
// which interrupts one waiting G — the one pthread_kill named, else the
// main G, else any (netpoll.h). sigaction and signal report the program's
// own handler, never the trampoline. Synchronous faults (SIGSEGV and the
// like raised by an instruction) interrupt nothing, as natively.
#include <errno.h>
#include <signal.h>

#include <atomic>

#include "core/netpoll.h"
#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {
using SigactionFn = int(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t(int, sighandler_t);
using MaskFn = int(int, const sigset_t*, sigset_t*);
constinit SigactionFn* real_sigaction = nullptr;
constinit MaskFn *real_sigprocmask = nullptr, *real_pthread_sigmask = nullptr;

constexpr int kNsig = 65;

// The program's action for each signal it handles (wrapped = the kernel
// runs the trampoline for it). Written by sigaction (handler and flags
// before the trampoline is installed), read by the trampoline.
struct ProgAction {
  std::atomic<void*> handler{nullptr};
  std::atomic<int> flags{0};
  std::atomic<bool> wrapped{false};
  sigset_t mask;
};
ProgAction g_prog[kNsig];

bool fault_signal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

void trampoline(int sig, siginfo_t* si, void* uc) {
  ProgAction& a = g_prog[sig];
  void* h = a.handler.load(std::memory_order_acquire);
  int fl = a.flags.load(std::memory_order_relaxed);
  // With SA_RESETHAND the kernel has put SIG_DFL back already.
  if (fl & SA_RESETHAND) a.wrapped.store(false, std::memory_order_relaxed);
  if (fl & SA_SIGINFO) reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h)(sig, si, uc);
  else reinterpret_cast<void (*)(int)>(h)(sig);
  bool synchronous = fault_signal(sig) && si && si->si_code > 0;
  if (runtime_up && !synchronous) netpoll_signal_arrived((fl & SA_RESTART) != 0);
}

void* handler_of(const struct sigaction* act) {
  return (act->sa_flags & SA_SIGINFO) ? reinterpret_cast<void*>(act->sa_sigaction)
                                      : reinterpret_cast<void*>(act->sa_handler);
}

int set_mask(MaskFn* real, int how, const sigset_t* set, sigset_t* old) {
  if (!set || how == SIG_UNBLOCK) return real(how, set, old);
  sigset_t s = *set;
  for (int sig = 1; sig < 65; sig++)
    if (poke_signal_is(sig)) sigdelset(&s, sig);
  return real(how, &s, old);
}
}  // namespace

namespace mnp {
void interpose_signal_init() {
  resolve_real(real_sigaction, "sigaction", "GLIBC_2.2.5");
  resolve_real(real_sigprocmask, "sigprocmask", "GLIBC_2.2.5");
  resolve_real(real_pthread_sigmask, "pthread_sigmask", "GLIBC_2.32");
}
}  // namespace mnp

extern "C" {

MNP_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (poke_signal_is(sig)) {
    poke_user_action(act, old);
    return 0;
  }
  if (sig < 1 || sig >= kNsig) return real_sigaction(sig, act, old);
  ProgAction& a = g_prog[sig];
  struct sigaction prev;
  if (a.wrapped.load(std::memory_order_acquire)) {
    prev = {};
    int fl = a.flags.load(std::memory_order_relaxed);
    if (fl & SA_SIGINFO) prev.sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(a.handler.load());
    else prev.sa_handler = reinterpret_cast<void (*)(int)>(a.handler.load());
    prev.sa_flags = fl;
    prev.sa_mask = a.mask;
  } else if (int r = real_sigaction(sig, nullptr, &prev); r != 0) {
    return r;  // EINVAL for a signal that cannot be caught or queried
  }
  if (act) {
    void* h = handler_of(act);
    if (h == reinterpret_cast<void*>(SIG_DFL) || h == reinterpret_cast<void*>(SIG_IGN)) {
      if (int r = real_sigaction(sig, act, nullptr); r != 0) return r;
      a.wrapped.store(false, std::memory_order_release);
    } else {
      // glibc refuses its internal signals and SIGKILL/SIGSTOP: try first
      // with the trampoline, keep the table only if the kernel took it.
      struct sigaction ours = *act;
      ours.sa_sigaction = trampoline;
      ours.sa_flags |= SA_SIGINFO;
      void* was_h = a.handler.load();
      int was_fl = a.flags.load();
      a.handler.store(h, std::memory_order_release);
      a.flags.store(act->sa_flags, std::memory_order_relaxed);
      if (int r = real_sigaction(sig, &ours, nullptr); r != 0) {
        a.handler.store(was_h);
        a.flags.store(was_fl);
        return r;
      }
      a.mask = act->sa_mask;
      a.wrapped.store(true, std::memory_order_release);
    }
  }
  if (old) *old = prev;
  return 0;
}

MNP_EXPORT sighandler_t signal(int sig, sighandler_t handler) noexcept {
  struct sigaction sa = {}, old = {};
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;  // BSD semantics, as glibc's signal()
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

}  // extern "C"

namespace mnp {
// Flags of the program's handler for sig, or -1 when it has none wrapped.
int program_signal_flags(int sig) {
  if (sig < 1 || sig >= kNsig || !g_prog[sig].wrapped.load(std::memory_order_acquire)) return -1;
  return g_prog[sig].flags.load(std::memory_order_relaxed);
}
}  // namespace mnp

extern "C" {

MNP_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return set_mask(real_sigprocmask, how, set, old);
}

MNP_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return set_mask(real_pthread_sigmask, how, set, old);
}

}  // extern "C"
