// core/cancel.cpp — see cancel.h.
#include "core/cancel.h"

#include <pthread.h>
#include <signal.h>

#include "core/base.h"
#include "core/preempt.h"
#include "core/futex.h"

namespace mnp {
namespace {
constinit Lock g_cancel_lock;  // one canceller at a time (cancel_busy has one setter)
}  // namespace

bool cancel_arm(G* g, CancelWait* cw) {
  g->cancel_wait.store(cw, std::memory_order_seq_cst);
  return cancel_due(cancelhandling(g).load(std::memory_order_seq_cst));
}

void cancel_disarm(G* g) {
  g->cancel_wait.store(nullptr, std::memory_order_seq_cst);
  while (g->cancel_busy.load(std::memory_order_seq_cst)) cpu_relax();
}

int cancel_set_request(G* g) {
  using namespace cancelbit;
  return cancelhandling(g).fetch_or(kCanceling | kCanceled, std::memory_order_seq_cst);
}

void cancel_wake(G* g) {
  LockGuard lk(g_cancel_lock);
  g->cancel_busy.store(1, std::memory_order_seq_cst);
  if (CancelWait* cw = g->cancel_wait.load(std::memory_order_seq_cst)) cw->wake(cw);
  g->cancel_busy.store(0, std::memory_order_seq_cst);
}

bool cancel_wake_for_signal(G* g) {
  LockGuard lk(g_cancel_lock);
  g->cancel_busy.store(1, std::memory_order_seq_cst);
  bool hit = false;
  if (CancelWait* cw = g->cancel_wait.load(std::memory_order_seq_cst); cw && cw->sig_wake) hit = cw->sig_wake(cw);
  g->cancel_busy.store(0, std::memory_order_seq_cst);
  return hit;
}

void cancel_point() {
  G* g = get_user_g();
  if (g && cancel_due(cancelhandling(g).load(std::memory_order_acquire))) pthread_testcancel();
}

void cancel_async_point(G* gp, ucontext_t* uc) {
  if (!cancel_due_async(cancelhandling(gp).load(std::memory_order_acquire))) return;
  if (arch_get_fs() != reinterpret_cast<uintptr_t>(gp->tcb)) return;  // mid-switch
  // tls_g cleared: the preemption's stack walk, in libunwind's code.
  if (tls_g != gp || gp->m->locks != 0) return;
  if (in_runtime_text(arch_uc_pc(uc))) return;
  // Every wrapped call the G is in must have a cleanup buffer.
  if (gp->syscall_depth != gp->cancel_handoff) return;
  ret_hook_drop(gp, uc);  // the unwind must see the libc function's own return address
  cancel_unwind_from_handler(uc);
}

void cancel_async_return() {
  G* g = get_user_g();
  if (g && g->syscall_depth == g->cancel_handoff && cancel_due_async(cancelhandling(g).load(std::memory_order_acquire)))
    pthread_testcancel();
}

void cancel_unwind_from_handler(ucontext_t* uc) {
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&uc->uc_sigmask), 0, 8);
  pthread_testcancel();
}

}  // namespace mnp
