// interpose/signal.cpp — the program's view of the runtime's signal.
//
// sysmon signals Ms with MNP_SIGNAL (SIGURG by default). The program may use
// that signal too, so the runtime's handler stays installed and the
// program's own action is recorded instead: sigaction and signal report and
// change that recorded action, and the runtime's handler passes every
// delivery that sysmon did not send on to it. Masks never block the signal
// on an M (a blocked M could be neither preempted nor found blocked): a
// program that blocks it reads the mask back without that bit, and its own
// instances of the signal are delivered to its handler even while "blocked".
// That is the one departure from native behaviour (README, known limits).
#include <errno.h>
#include <signal.h>

#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {
using SigactionFn = int(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t(int, sighandler_t);
using MaskFn = int(int, const sigset_t*, sigset_t*);
constinit SigactionFn* real_sigaction = nullptr;
constinit MaskFn *real_sigprocmask = nullptr, *real_pthread_sigmask = nullptr;

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
  if (!poke_signal_is(sig)) return real_sigaction(sig, act, old);
  poke_user_action(act, old);
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

MNP_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return set_mask(real_sigprocmask, how, set, old);
}

MNP_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return set_mask(real_pthread_sigmask, how, set, old);
}

}  // extern "C"
