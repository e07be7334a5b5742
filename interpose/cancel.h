// interpose/cancel.h — the cleanup buffer that makes a hand-off call safe to
// unwind (docs/ARCHITECTURE.md, "Cancellation").
//
// A G in a hand-off call runs glibc's own function with its P marked as in
// a syscall (or handed off). If that function is a cancellation point,
// glibc may unwind the G out of it: at entry when a request is due, or from
// the SIGCANCEL handler while it blocks. The buffer takes the P back before
// the unwind goes on into the program's frames, and G::cancel_handoff tells
// interpose/cancel.cpp's handler that every wrapped call the G is in has
// such a buffer. It is a buffer of glibc's first cleanup ABI (a link in
// the thread's cleanup list, what _pthread_cleanup_push makes), which
// glibc's unwinder runs as it leaves the frame that holds it. Rejected:
// pthread_cleanup_push as C code gets it (the shim is built without
// exceptions), whose sigsetjmp and register/unregister calls made every
// hand-off call 4–7 ns slower; calling _pthread_cleanup_push/_pop, about
// 3 ns slower (two PLT calls). Linked inline it is a few stores.
#pragma once

#include <pthread.h>

#include "arch/x86_64/context.h"
#include "core/sched.h"
#include "core/tcb.h"

namespace mnp {

void handoff_unwound(void*);  // cancel.cpp

// Runs f() (a glibc call, between entersyscall and exitsyscall). The buffer
// is linked into struct pthread's `cleanup` list inline, exactly as glibc's
// _pthread_cleanup_push/_pop do (two PLT calls saved: about 2 ns per
// call); tcb_runtime_init checks the field's offset against glibc's own
// push before any G exists.
// g: the caller, a user G.
template <typename F>
inline auto call_cancelable(G* g, const F& f) -> decltype(f()) {
  if (g->syscall_depth == 0) return f();  // not handed off: nothing to undo
  decltype(f()) r;
  _pthread_cleanup_buffer buf;
  buf.__routine = handoff_unwound;
  buf.__arg = nullptr;
  buf.__canceltype = 0;
  buf.__prev = static_cast<_pthread_cleanup_buffer*>(arch_tcb_load_ptr<tcbo::kCleanup>());
  arch_tcb_store_ptr<tcbo::kCleanup>(&buf);
  g->cancel_handoff++;
  r = f();
  g->cancel_handoff--;
  arch_tcb_store_ptr<tcbo::kCleanup>(buf.__prev);
  return r;
}

}  // namespace mnp
