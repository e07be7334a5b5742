// interpose/cancel.cpp — pthread_cancel for Gs (docs/ARCHITECTURE.md,
// "Cancellation").
//
// glibc's pthread_cancel cannot work on a G: for a target with asynchronous
// cancellation enabled (the program's choice, or glibc's own window around
// a blocking system call) it tgkills the TCB's tid, which names no kernel
// thread. So the request is made here:
//
//   1. CANCELING|CANCELED are set in the G's cancelhandling word (glibc's
//      layout, core/cancel.h), so glibc's cancellation points and
//      pthread_testcancel see it. A finished, unjoined G gets 0, as glibc
//      2.36 answers for an exited thread.
//   2. If the G is parked in a cancellable runtime wait, cancel_wake ends
//      that wait; the G acts on the request on its own stack
//      (cancel_point) once it has undone the wait (condvar: mutex re-taken).
//   3. If cancellation is asynchronous at that moment and the G is on an M
//      (running, or inside glibc's cancellation window of a hand-off call),
//      SIGCANCEL is sent to that M with rt_tgsigqueueinfo carrying the G's
//      handle. Our handler (installed in place of glibc's, which would act
//      on whatever G the M runs by then) checks that the M still runs that
//      G, outside the shim, with no runtime state that an unwind would
//      abandon, and then unwinds it. A hand-off call registers a cleanup
//      buffer (interpose/blocking.h) that takes the P back on the way out.
//      Where the signal finds the runtime's code instead, the G acts at its
//      next return from the runtime to program code (core/cancel.h,
//      cancel_async_point).
//
// Both the request bits and the wake-up are ordered as core/cancel.h says.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include "arch/x86_64/context.h"
#include "core/base.h"
#include "core/cancel.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "interpose/cancel.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

constexpr int kSigCancel = 32;                     // glibc's SIGCANCEL (__SIGRTMIN)
constexpr unsigned long kSaRestorer = 0x04000000;  // the kernel's SA_RESTORER (not in the user headers)

struct KSigaction {  // the kernel's struct sigaction for rt_sigaction
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

void sigcancel_handler(int sig, siginfo_t* si, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  if (sig != kSigCancel || !si || si->si_pid != static_cast<pid_t>(raw_syscall(SYS_getpid))) return;
  int saved_errno = errno;
  M* mp = m_by_tid(raw_gettid());
  if (!mp) {
    // A thread that is not an M: glibc's pthread_cancel of a native thread
    // (SI_TKILL), handled as glibc's own handler would.
    if (si->si_code == SI_TKILL) {
      auto& ch = tcb_field<std::atomic<int>>(reinterpret_cast<void*>(arch_get_fs()), tcbo::kCancelHandling);
      int v = ch.fetch_or(cancelbit::kCanceling | cancelbit::kCanceled, std::memory_order_seq_cst);
      if (cancel_due_async(v | cancelbit::kCanceled)) cancel_unwind_from_handler(uc);
    }
    errno = saved_errno;
    return;
  }
  if (si->si_code != SI_QUEUE) return;
  // Ours: the value names the G it was meant for. A G that moved on, or
  // that the signal finds inside the runtime, acts at its next return to
  // program code instead.
  G* gp = mp->curg;
  if (gp && !gp->is_g0 && gp->tcb == si->si_value.sival_ptr) cancel_async_point(gp, uc);
  errno = saved_errno;
}

constinit std::atomic<bool> g_installed{false};

// Installs sigcancel_handler with glibc's signal restorer (borrowed from its
// SIGSETXID action: unwinding through the signal frame needs the restorer
// the unwinder recognises).
void install_handler(bool force) {
  if (!force && g_installed.load(std::memory_order_acquire)) return;
  KSigaction donor{};
  for (int s : {33, SIGURG, SIGCHLD}) {
    if (raw_syscall(SYS_rt_sigaction, s, 0, reinterpret_cast<long>(&donor), 8) == 0 && (donor.flags & kSaRestorer))
      break;
    donor = {};
  }
  if (!donor.restorer) return;  // nothing to borrow: no asynchronous cancellation
  KSigaction nw{};
  nw.handler = sigcancel_handler;
  nw.flags = SA_SIGINFO | SA_RESTART | kSaRestorer;
  nw.restorer = donor.restorer;
  raw_syscall(SYS_rt_sigaction, kSigCancel, reinterpret_cast<long>(&nw), 0, 8);
  g_installed.store(true, std::memory_order_release);
}

// SIGCANCEL to the M g is on, if it is on one.
void signal_m_of(G* g) {
  uint32_t st = g->status.load(std::memory_order_acquire);
  M* mp = g->m;
  if ((st != kGRunning && st != kGSyscall) || !mp) return;
  siginfo_t si{};
  si.si_signo = kSigCancel;
  si.si_code = SI_QUEUE;
  si.si_pid = static_cast<pid_t>(raw_syscall(SYS_getpid));
  si.si_uid = static_cast<uid_t>(raw_syscall(SYS_getuid));
  si.si_value.sival_ptr = g->tcb;
  raw_syscall(SYS_rt_tgsigqueueinfo, si.si_pid, mp->tid, kSigCancel, reinterpret_cast<long>(&si));
}

// pthread_cancel for th; the caller is a G of a running runtime or anything
// before it runs.
int cancel_request(pthread_t th) {
  G* t = nullptr;
  HandleKind k = runtime_up ? handle_kind(th, &t) : HandleKind::kNative;
  if (k == HandleKind::kNone) return ESRCH;
  if (k == HandleKind::kNative) {
    int r = real_pthread_cancel(th);
    if (runtime_up) install_handler(true);  // glibc's pthread_cancel installs its own handler once
    return r;
  }
  if (t->status.load(std::memory_order_acquire) == kGDead) return 0;
  using namespace cancelbit;
  int old = cancel_set_request(t);
  int now = old | kCanceling | kCanceled;
  if (old == now) return 0;
  if (t == get_user_g()) {
    if (cancel_due_async(now)) pthread_testcancel();
    return 0;
  }
  if (old & kDisabled) return 0;  // acted on when enabled again, at a cancellation point
  install_handler(false);
  cancel_wake(t);
  if (cancel_due_async(now)) signal_m_of(t);
  return 0;
}

}  // namespace

namespace mnp {
void handoff_unwound(void*) {
  get_user_g()->cancel_handoff--;
  exitsyscall();
}
}  // namespace mnp

extern "C" {

MNP_EXPORT int pthread_cancel(pthread_t th) {
  int r = cancel_request(th);
  // pthread_cancel is async-cancel-safe: an asynchronously cancelable
  // caller whose SIGCANCEL found it in here acts now, at its return to
  // program code (core/cancel.h).
  cancel_async_return();
  return r;
}

}  // extern "C"
