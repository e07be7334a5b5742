// core/rtfd.h — file descriptors that belong to the runtime, not the
// program: the netpoller's epoll instance and eventfd ("owned"), and the
// pipe libunwind opens to validate addresses during stack walks
// ("foreign": libunwind keeps the numbers in its own statics).
//
// They share the program's fd table, and programs close or reuse fd
// numbers they never opened: daemons close everything above 2, shells
// `exec 3>file` (dup2 onto 3). Closing the epoll fd would hang every G
// waiting for an fd; libunwind, finding its pipe gone, closes and reopens
// it — closing the program's file — and writes a byte of memory into
// whatever fd 4 has become. So the interposed close, closefrom and
// close_range leave these fds alone (close reports EBADF, as for a number
// not in use), and dup2/dup3 onto one first moves an owned fd out of the
// way, or, for libunwind's, turns stack walks (asynchronous preemption) off
// for good before the program takes the number.
#pragma once

namespace mnp {

// kProbe: a /proc file sysmon keeps open to re-read (traced_check); when
// the program takes its number it is simply given up, and sysmon opens
// another when it next needs one.
enum class RtfdKind { kOwned, kForeign, kProbe };

void rtfd_add(int fd, RtfdKind kind);
void rtfd_remove(int fd);
bool rtfd_is(int fd);
// The registered fds in ascending order; returns how many (at most max).
int rtfd_list(int* out, int max);
// The program is about to make `fd` refer to something else (dup2/dup3).
// Afterwards fd is no longer the runtime's.
void rtfd_yield(int fd);
// Moves fd to a number near the top of RLIMIT_NOFILE (out of the way of
// programs that use small numbers); returns the new fd, or fd itself when
// it cannot. The old number is closed.
int rtfd_move_high(int fd);
// A copy of fd (close-on-exec) near the top of that range, or at the
// lowest free number when the top is full; -1 if no number is free.
int rtfd_dup_high(int fd);

}  // namespace mnp
