// interpose/cancel.h — the cleanup buffer that makes a hand-off call safe to
// unwind (docs/ARCHITECTURE.md, "Cancellation").
//
// A G in a hand-off call runs glibc's own function with its P marked as in
// a syscall (or handed off). If that function is a cancellation point,
// glibc may unwind the G out of it: at entry when a request is due, or from
// the SIGCANCEL handler while it blocks. The buffer takes the P back before
// the unwind goes on into the program's frames, and G::cancel_handoff tells
// interpose/cancel.cpp's handler that every wrapped call the G is in has
// such a buffer. It is a buffer of glibc's first cleanup ABI
// (_pthread_cleanup_push: a link in the thread's cleanup list), which
// glibc's unwinder runs as it leaves the frame that holds it. Rejected:
// pthread_cleanup_push as C code gets it (the shim is built without
// exceptions), whose sigsetjmp and register/unregister calls made every
// hand-off call 4–7 ns slower; this one costs about 3 ns
// (BM_HandoffNoKernel, README).
#pragma once

#include <pthread.h>

#include "core/sched.h"

// glibc's cleanup buffers of the first ABI (exported, no longer declared):
// a link in the thread's list, with no jump buffer.
extern "C" void _pthread_cleanup_push(struct _pthread_cleanup_buffer*, void (*)(void*), void*);
extern "C" void _pthread_cleanup_pop(struct _pthread_cleanup_buffer*, int);

namespace mnp {

void handoff_unwound(void*);  // cancel.cpp

// Runs f() (a glibc call, between entersyscall and exitsyscall).
template <typename F>
inline auto call_cancelable(const F& f) -> decltype(f()) {
  G* g = get_user_g();
  if (!g || g->syscall_depth == 0) return f();  // not handed off: nothing to undo
  decltype(f()) r;
  _pthread_cleanup_buffer buf;
  _pthread_cleanup_push(&buf, handoff_unwound, nullptr);
  g->cancel_handoff++;
  r = f();
  g->cancel_handoff--;
  _pthread_cleanup_pop(&buf, 0);
  return r;
}

}  // namespace mnp
