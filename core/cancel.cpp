// core/cancel.cpp — see cancel.h.
#include "core/cancel.h"

#include <pthread.h>

#include "core/base.h"
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

}  // namespace mnp
