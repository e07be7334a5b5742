// interpose/fdcall.h — pieces shared by the netpoller's interposers
// (net.cpp: reads, writes, sockets; poll.cpp: the poll family).
#pragma once

#include <errno.h>
#include <poll.h>

#include "core/sched.h"
#include "interpose/blocking.h"

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

// interpose/signalfd.cpp: read() of a signalfd the program made, on a G
// (true, *out libc-style); false for any other fd.
bool signalfd_read(int fd, void* buf, size_t n, long* out);
// close or dup2/dup3 onto fd: no longer a signalfd of the program's.
void signalfd_forget(int fd);
// poll/ppoll on a G: after the kernel's look (r ready), adds POLLIN for each
// recorded signalfd with a signal of its mask pending for this G alone;
// returns the new count. While it lives, the G's signalfd wait is published
// (G::sigfd_fd), so that such a signal sent meanwhile ends the poll's wait.
struct SignalfdPoll {
  bool armed = false;
  ~SignalfdPoll();
};
long signalfd_poll_merge(SignalfdPoll* sp, struct pollfd* fds, unsigned long n, long r);

// glibc's __chk_fail, for the _FORTIFY_SOURCE entry points (net.cpp).
[[noreturn]] void fortify_fail();

}  // namespace mnp
