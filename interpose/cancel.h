// interpose/cancel.h — the cleanup buffer that makes a hand-off call safe to
// unwind (docs/ARCHITECTURE.md, "Cancellation").
//
// A G in a hand-off call runs glibc's own function with its P marked as in
// a syscall (or handed off). If that function is a cancellation point,
// glibc may unwind the G out of it: at entry when a request is due, or from
// the SIGCANCEL handler while it blocks. The buffer, registered exactly as
// pthread_cleanup_push does in C (the shim is built without exceptions),
// takes the P back before the unwind goes on into the program's frames, and
// G::cancel_handoff tells interpose/cancel.cpp's handler that every wrapped
// call the G is in has such a buffer.
#pragma once

#include <pthread.h>

#include "core/sched.h"

namespace mnp {

void handoff_unwound(void*);  // cancel.cpp

// Runs f() (a glibc call, between entersyscall and exitsyscall).
template <typename F>
inline auto call_cancelable(const F& f) -> decltype(f()) {
  G* g = get_user_g();
  if (!g || g->syscall_depth == 0) return f();  // not handed off: nothing to undo
  decltype(f()) r;
  pthread_cleanup_push(handoff_unwound, nullptr);
  g->cancel_handoff++;
  r = f();
  g->cancel_handoff--;
  pthread_cleanup_pop(0);
  return r;
}

}  // namespace mnp
