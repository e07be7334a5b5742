// interpose/fdcall.h — pieces shared by the netpoller's interposers
// (net.cpp: reads, writes, sockets; poll.cpp: the poll family).
#pragma once

#include <errno.h>

#include "core/sched.h"
#include "interpose/cancel.h"

namespace mnp {

// The caller is a G (threads that are not call libc directly).
inline bool fd_caller_is_g() { return runtime_up && get_user_g(); }

// A raw system-call result (-errno on error) as libc returns it: -1 with
// errno set.
inline long raw_to_libc(long r) {
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

// Runs a libc call that may block in the kernel with the P handed off;
// returns its result with its errno.
template <typename F>
long libc_handoff(F call) {
  entersyscall();
  long r = call_cancelable(call);
  int e = errno;
  exitsyscall();
  errno = e;
  return r;
}

// glibc's __chk_fail, for the _FORTIFY_SOURCE entry points (net.cpp).
[[noreturn]] void fortify_fail();

}  // namespace mnp
