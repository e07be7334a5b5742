// interpose/fdcall.h — pieces shared by the netpoller's interposers
// (net.cpp: reads, writes, sockets; poll.cpp: the poll family).
#pragma once

#include <errno.h>
#include <poll.h>

#include "core/sched.h"
#include "interpose/blocking.h"

namespace mnp {

// The caller is a G (threads that are not call libc directly).
inline bool fd_caller_is_g() { return running_user_g() != nullptr; }

// A zero-timeout poll the runtime makes for a call of the program's (the
// look before accept, poll's first look, a signalfd's): an EINTR there
// means a signal landed during it. The runtime's own (preemption, kicks)
// must not end the program's call: accept once failed with EINTR, in 1 of
// 6 runs of tests/programs/echo_server.c. Nor may a handler of the
// program's end an accept or a read that had not begun to wait (natively
// the handler runs first and the call goes on), so those looks are made
// again for any EINTR; a poll ends for a handler natively, so its look
// (poll_of_program) is made again only if no handler of the program's ran.
template <typename Look>
long look_again_on_eintr(Look look, bool poll_of_program = false) {
  uint32_t before = g_handlers_run();
  for (;;) {
    long r = look();
    if (r != -EINTR || (poll_of_program && g_handlers_run() != before)) return r;
  }
}

// A zero-timeout call of the poll family that the program made: the real
// function f(a...) (libc-style: -1 and errno) at once, bracketed as a quick
// system call (handoff). The runtime's own signal (a slice's end, a kick)
// may still land during it, and the kernel never restarts the poll family
// after a handler (signal(7)): such an EINTR, with no handler of the
// program's run on this G meanwhile, is made again with errno as on entry.
// Natively a zero-timeout poll fails with EINTR only for a handler; a
// tester's 64 threads polling beside 2 computing ones got 3-63 such EINTRs
// in 6 s at 1 P.
template <typename F, typename... A>
int poll_now(const F& f, A... a) {
  G* g = running_user_g();
  const int e0 = errno;
  const uint32_t before = g ? g->handlers_run : 0;
  for (;;) {
    int r = handoff(f, a...);
    if (r != -1 || errno != EINTR || !g || g->handlers_run != before) return r;
    errno = e0;
  }
}

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
