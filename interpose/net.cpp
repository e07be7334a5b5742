// interpose/net.cpp — reads, writes, sends, receives and accepts on fds
// that can block (docs/ARCHITECTURE.md, "Blocking calls", class "poll").
//
// Each call is first tried without blocking — preadv2/pwritev2 with
// RWF_NOWAIT, or MSG_DONTWAIT on socket calls — so O_NONBLOCK is never
// changed on a file description (it may be shared with other processes).
// On EAGAIN:
//   - if the program itself made the fd non-blocking (F_GETFL), EAGAIN is
//     the answer, as natively;
//   - else the G parks on the netpoller until the fd is ready and retries,
//     honouring SO_RCVTIMEO/SO_SNDTIMEO (EAGAIN when they expire);
//   - fds epoll cannot watch (regular files) and files that refuse
//     RWF_NOWAIT go to the blocking call with the P handed off.
// Writes and sends on a blocking fd complete fully (advancing through the
// iovec), as a blocking call would. Callers that are not Gs call libc; the
// process's only G, with nothing queued, makes the real call at once
// (wait_direct, core/sched.h: nothing else could use its P).
// A read of a signalfd the program made is interpose/signalfd.cpp's.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/preempt.h"
#include "core/rtfd.h"
#include "core/sigpend.h"
#include "interpose/fdcall.h"
#include "core/sched.h"
#include "interpose/proctask.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

constexpr int64_t kUnset = -1;

bool program_nonblocking(int fd) {
  long fl = raw_syscall(SYS_fcntl, fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

// SO_RCVTIMEO / SO_SNDTIMEO of a socket as a deadline; kNever otherwise.
int64_t socket_deadline(int fd, PollDir dir) {
  struct timeval tv = {0, 0};
  socklen_t len = sizeof tv;
  if (raw_syscall6(SYS_getsockopt, fd, SOL_SOCKET, dir == PollDir::kRead ? SO_RCVTIMEO : SO_SNDTIMEO,
                   reinterpret_cast<long>(&tv), reinterpret_cast<long>(&len), 0) != 0 ||
      (tv.tv_sec == 0 && tv.tv_usec == 0))
    return kNever;
  return nanotime() + static_cast<int64_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000;
}

// Drives one call: `attempt` returns a raw result (-errno on error) without
// blocking; `blocking` is the libc call (sets errno) for fds epoll refuses.
// Returns a libc-style result.
template <typename Attempt, typename Blocking>
long drive(int fd, PollDir dir, Attempt attempt, Blocking blocking) {
  // The process's only G (wait_direct, core/sched.h): the real call, which
  // blocks or not as the fd's own flags say, in syscall state.
  if (G* g = get_user_g(); g && wait_direct(g)) return direct_call(g, [&] { return handoff(blocking); });
  std::atomic<uint32_t>* seq = netpoll_seq(fd, dir);
  if (!seq) return blocking();
  int64_t deadline = kUnset;
  for (;;) {
    uint32_t seen = seq->load(std::memory_order_acquire);
    long r = attempt();
    if (r == -EOPNOTSUPP || r == -ENOSYS) return handoff(blocking);
    if (r != -EAGAIN) {
      preempt_check();  // the call is done: a slice that ended meanwhile ends here
      return raw_to_libc(r);
    }
    // The few-threads path (core/sched.h, wait_few): no more Gs than Ps, so
    // parking would only switch to g0, which would block in the netpoller
    // on this G's behalf; the real call instead, its P idle meanwhile
    // (after the attempt, so that calls that would not block pay no
    // bracket; on an O_NONBLOCK fd the real call gives the EAGAIN). Only
    // while every handler of the program's has SA_RESTART
    // (sig_handlers_restart): a signal an idle M takes reaches this G
    // through sysmon's kick, whose own SA_RESTART has the kernel restart
    // the call after the handler (the kick ends it with EINTR after a
    // handler without the flag that the interposer did not see). Two
    // threads passing a byte through blocking pipes made about 24 system
    // calls a round trip this loop's way (an RWF_NOWAIT read, F_GETFL,
    // SO_RCVTIMEO, an epoll_ctl, the wait, an FS base write), natively 4.
    if (G* g = get_user_g(); g && wait_few(g) && sig_handlers_restart()) {
      uint32_t outer = g->in_wait_call.exchange(kWaitCallRw, std::memory_order_relaxed);  // a handler's call in a call
      long rr = blocking_call<Enter::kWait>(blocking);
      g->in_wait_call.store(outer, std::memory_order_relaxed);
      return rr;
    }
    // A regular file's EAGAIN is RWF_NOWAIT's (pages not cached): the
    // kernel ignores O_NONBLOCK there, so the read blocks (handed off below).
    if (program_nonblocking(fd) && !netpoll_fd_is_file(fd)) return raw_to_libc(-EAGAIN);
    // Reading shut down (a datagram socket's EAGAIN there is the
    // non-blocking call's): the real call, whose answer the kernel gives
    // at once (0 from a recv, with its address length, EINVAL from an
    // accept on a unix listener), rather than a wait for data that cannot
    // come.
    if (dir == PollDir::kRead && netpoll_fd_read_shut(fd)) return handoff(blocking);
    if (deadline == kUnset) deadline = socket_deadline(fd, dir);
    int w = netpoll_wait(fd, dir, seen, deadline);
    if (w == EPERM) return handoff(blocking);
    if (w == ETIMEDOUT) return raw_to_libc(-EAGAIN);
    if (w == EINTR) return raw_to_libc(-EINTR);  // a handler without SA_RESTART ran
    if (w == ECANCELED) cancel_point();          // pthread_cancel: unwinds from here
  }
}

// -ENOSYS once a seccomp filter refused them (core/base.h): drive then
// hands the real call off.
// -EOPNOTSUPP at once for an fd that refused the flag before (netpoll.h).
long raw_readv_nowait(int fd, const struct iovec* iov, int n) {
  if (MNP_UNLIKELY(runtime_call_refused(kRefusedNowaitIo))) return -ENOSYS;
  if (netpoll_fd_refuses_nowait(fd, PollDir::kRead)) return -EOPNOTSUPP;
  long r = raw_syscall6(SYS_preadv2, fd, reinterpret_cast<long>(iov), n, -1, -1, RWF_NOWAIT);
  if (r == -EOPNOTSUPP) netpoll_fd_note_refuses_nowait(fd, PollDir::kRead);
  return r;
}
long raw_writev_nowait(int fd, const struct iovec* iov, int n) {
  if (MNP_UNLIKELY(runtime_call_refused(kRefusedNowaitIo))) return -ENOSYS;
  if (netpoll_fd_refuses_nowait(fd, PollDir::kWrite)) return -EOPNOTSUPP;
  long r = raw_syscall6(SYS_pwritev2, fd, reinterpret_cast<long>(iov), n, -1, -1, RWF_NOWAIT);
  if (r == -EOPNOTSUPP) netpoll_fd_note_refuses_nowait(fd, PollDir::kWrite);
  return r;
}

// Goes on through the iovec array `done` bytes in: calls io on what is left
// until all of it is done, a call moves nothing (0) or fails (the count so
// far is returned then, as the kernel returns a partial count, or the
// error if there is none). io is called at least once.
template <typename Io>
long iov_finish(const struct iovec* iov_in, int cnt, size_t done, Io io) {
  struct iovec small[64];
  struct iovec* it = small;
  if (cnt > 64) it = static_cast<struct iovec*>(__builtin_alloca(sizeof(struct iovec) * static_cast<size_t>(cnt)));
  memcpy(it, iov_in, sizeof(struct iovec) * static_cast<size_t>(cnt));
  size_t total = 0;
  for (int i = 0; i < cnt; i++) total += it[i].iov_len;
  for (size_t skip = done;;) {
    while (skip && cnt > 0 && skip >= it->iov_len) {
      skip -= it->iov_len;
      it++;
      cnt--;
    }
    if (cnt > 0) {
      it->iov_base = static_cast<char*>(it->iov_base) + skip;
      it->iov_len -= skip;
    }
    long r = io(it, cnt);
    if (r < 0) return done > 0 ? static_cast<long>(done) : r;
    done += static_cast<size_t>(r);
    if (done >= total || r == 0) return static_cast<long>(done);
    skip = static_cast<size_t>(r);
  }
}

// A blocking write completes: keep going through the iovec until all of it
// is written, an error comes (the partial count is returned then, as the
// kernel does), or a non-blocking fd says EAGAIN.
template <typename WriteSome>
long write_all(const struct iovec* iov, int cnt, WriteSome write_some) {
  if (cnt < 0 || cnt > IOV_MAX) return raw_to_libc(-EINVAL);
  return iov_finish(iov, cnt, 0, write_some);
}

// read and readv for a G. A short count RWF_NOWAIT gave for a regular
// file stopped where the page cache did; natively the read goes on to the
// end of the file or of the buffers, so the rest blocks, handed off. Only
// that count: a file that refuses RWF_NOWAIT (procfs, tracefs: trace_pipe,
// /proc/kmsg) went to the real call, whose short count is the answer.
//
// plain: the program called read, whose real call is read, not readv
// (sshd's seccomp sandbox allows read and kills readv: every login died).
long read_g(int fd, const struct iovec* iov, int cnt, bool plain) {
  auto real_call = [&](const struct iovec* it, int c) {
    return plain && c == 1 ? real_read(fd, it->iov_base, it->iov_len) : real_readv(fd, it, c);
  };
  bool nowait = false;  // the count came from the RWF_NOWAIT attempt
  long r = drive(
      fd, PollDir::kRead,
      [&] {
        long x = raw_readv_nowait(fd, iov, cnt);
        nowait = x >= 0;
        return x;
      },
      [&] {
        nowait = false;
        return real_call(iov, cnt);
      });
  if (r <= 0 || !nowait) return r;
  size_t want = 0;
  for (int i = 0; i < cnt; i++) want += iov[i].iov_len;
  if (static_cast<size_t>(r) >= want || !netpoll_fd_is_file(fd)) return r;
  return iov_finish(iov, cnt, static_cast<size_t>(r),
                    [&](const struct iovec* it, int c) { return handoff([&] { return real_call(it, c); }); });
}

// writev and write for a G; plain as for read_g.
long write_g(int fd, const struct iovec* iov, int cnt, bool plain) {
  return write_all(iov, cnt, [&](const struct iovec* it, int c) {
    return drive(
        fd, PollDir::kWrite, [&] { return raw_writev_nowait(fd, it, c); },
        [&] { return plain && c == 1 ? real_write(fd, it->iov_base, it->iov_len) : real_writev(fd, it, c); });
  });
}

// The runtime's own fds (core/rtfd.h) do not exist as far as the program is
// concerned: close of one gets EBADF, as an unused number would, and
// closefrom/close_range step around them.
// close_range over [first, last] minus the runtime's fds.
int close_range_around(unsigned first, unsigned last, int flags) {
  int own[8];
  int n = rtfd_list(own, 8);
  unsigned lo = first;
  for (int i = 0; i < n && lo <= last; i++) {
    auto f = static_cast<unsigned>(own[i]);
    if (f < lo || f > last) continue;
    if (f > lo) {
      long r = raw_syscall(SYS_close_range, lo, f - 1, flags);
      if (r < 0) return static_cast<int>(raw_to_libc(r));
    }
    lo = f + 1;
  }
  if (lo <= last && lo != 0) {  // lo == 0: wrapped past UINT_MAX
    long r = raw_syscall(SYS_close_range, lo, last, flags);
    if (r < 0) return static_cast<int>(raw_to_libc(r));
  }
  if (!(flags & CLOSE_RANGE_CLOEXEC)) netpoll_close_range(first, last);
  return 0;
}

}  // namespace

namespace mnp {
void fortify_fail() {
  real___chk_fail();
  __builtin_unreachable();
}

}  // namespace mnp

extern "C" {

MNP_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  if (!fd_caller_is_g()) return real_read(fd, buf, n);
  if (long r; signalfd_read(fd, buf, n, &r)) return r;
  struct iovec v = {buf, n};
  return read_g(fd, &v, 1, true);
}

// _FORTIFY_SOURCE (Debian's default) turns read, recv and recvfrom on a
// buffer of known size into these: glibc's check, then the call above.
MNP_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) noexcept {
  if (n > buflen) fortify_fail();
  return read(fd, buf, n);
}

MNP_EXPORT ssize_t readv(int fd, const struct iovec* iov, int cnt) {
  if (!fd_caller_is_g()) return real_readv(fd, iov, cnt);
  return read_g(fd, iov, cnt, false);
}

MNP_EXPORT ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  if (!fd_caller_is_g()) return real_writev(fd, iov, cnt);
  return write_g(fd, iov, cnt, false);
}

MNP_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  if (!fd_caller_is_g()) return real_write(fd, buf, n);
  struct iovec v = {const_cast<void*>(buf), n};
  return write_g(fd, &v, 1, true);
}

MNP_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* a, socklen_t* l) {
  if (!fd_caller_is_g() || (flags & (MSG_DONTWAIT | MSG_ERRQUEUE))) return real_recvfrom(fd, buf, n, flags, a, l);
  return drive(
      fd, PollDir::kRead,
      [&] {
        return raw_syscall6(SYS_recvfrom, fd, reinterpret_cast<long>(buf), static_cast<long>(n), flags | MSG_DONTWAIT,
                            reinterpret_cast<long>(a), reinterpret_cast<long>(l));
      },
      [&] { return real_recvfrom(fd, buf, n, flags, a, l); });
}

MNP_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (!fd_caller_is_g() || (flags & (MSG_DONTWAIT | MSG_ERRQUEUE))) return real_recv(fd, buf, n, flags);
  return recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

MNP_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) noexcept {
  if (n > buflen) fortify_fail();
  return recv(fd, buf, n, flags);
}

MNP_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, struct sockaddr* a,
                                  socklen_t* l) noexcept {
  if (n > buflen) fortify_fail();
  return recvfrom(fd, buf, n, flags, a, l);
}

MNP_EXPORT ssize_t recvmsg(int fd, struct msghdr* m, int flags) {
  if (!fd_caller_is_g() || (flags & (MSG_DONTWAIT | MSG_ERRQUEUE))) return real_recvmsg(fd, m, flags);
  return drive(
      fd, PollDir::kRead, [&] { return raw_syscall(SYS_recvmsg, fd, reinterpret_cast<long>(m), flags | MSG_DONTWAIT); },
      [&] { return real_recvmsg(fd, m, flags); });
}

MNP_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* a, socklen_t l) {
  if (!fd_caller_is_g() || (flags & MSG_DONTWAIT)) return real_sendto(fd, buf, n, flags, a, l);
  struct iovec v = {const_cast<void*>(buf), n};
  return write_all(&v, 1, [&](const struct iovec* it, int) {
    return drive(
        fd, PollDir::kWrite,
        [&] {
          return raw_syscall6(SYS_sendto, fd, reinterpret_cast<long>(it->iov_base), static_cast<long>(it->iov_len),
                              flags | MSG_DONTWAIT, reinterpret_cast<long>(a), l);
        },
        [&] { return real_sendto(fd, it->iov_base, it->iov_len, flags, a, l); });
  });
}

MNP_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (!fd_caller_is_g() || (flags & MSG_DONTWAIT)) return real_send(fd, buf, n, flags);
  return sendto(fd, buf, n, flags, nullptr, 0);
}

MNP_EXPORT ssize_t sendmsg(int fd, const struct msghdr* m, int flags) {
  if (!fd_caller_is_g() || (flags & MSG_DONTWAIT)) return real_sendmsg(fd, m, flags);
  if (m->msg_iovlen > IOV_MAX) {
    errno = EMSGSIZE;
    return -1;
  }
  bool first = true;
  return write_all(m->msg_iov, static_cast<int>(m->msg_iovlen), [&](const struct iovec* it, int c) {
    struct msghdr part = *m;
    part.msg_iov = const_cast<struct iovec*>(it);
    part.msg_iovlen = static_cast<size_t>(c);
    // Ancillary data goes with the first part only (write_all calls again
    // only after some bytes went out).
    if (!first) part.msg_control = nullptr, part.msg_controllen = 0;
    first = false;
    return drive(
        fd, PollDir::kWrite,
        [&] { return raw_syscall(SYS_sendmsg, fd, reinterpret_cast<long>(&part), flags | MSG_DONTWAIT); },
        [&] { return real_sendmsg(fd, &part, flags); });
  });
}

// recvmmsg on a blocking socket waits for the first message and then, unless
// MSG_WAITFORONE, for the rest of vlen, one park per message (the kernel
// caps vlen at UIO_MAXIOV). An error after some messages returns the count,
// as natively. With a timeout (checked by the kernel only after each
// message, and written back) it stays the real call with the P handed off.
MNP_EXPORT int recvmmsg(int fd, struct mmsghdr* v, unsigned int vlen, int flags, struct timespec* t) {
  if (!fd_caller_is_g() || (flags & (MSG_DONTWAIT | MSG_ERRQUEUE))) return real_recvmmsg(fd, v, vlen, flags, t);
  if (t) return static_cast<int>(handoff([&] { return static_cast<long>(real_recvmmsg(fd, v, vlen, flags, t)); }));
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;
  unsigned int got = 0;
  do {
    long r = drive(
        fd, PollDir::kRead,
        [&] {
          return raw_syscall6(SYS_recvmmsg, fd, reinterpret_cast<long>(v + got), vlen - got,
                              (flags & ~MSG_WAITFORONE) | MSG_DONTWAIT, 0, 0);
        },
        [&] { return static_cast<long>(real_recvmmsg(fd, v + got, vlen - got, flags | MSG_WAITFORONE, nullptr)); });
    if (r <= 0) return got > 0 ? static_cast<int>(got) : static_cast<int>(r);
    got += static_cast<unsigned int>(r);
  } while (got < vlen && !(flags & MSG_WAITFORONE));
  return static_cast<int>(got);
}

// sendmmsg on a blocking socket sends every message completely, as vlen
// blocking sendmsg calls would; an error after some messages returns the
// count. A stream socket may take part of a message: the rest goes out
// through sendmsg, which completes it.
MNP_EXPORT int sendmmsg(int fd, struct mmsghdr* v, unsigned int vlen, int flags) {
  if (!fd_caller_is_g() || (flags & MSG_DONTWAIT)) return real_sendmmsg(fd, v, vlen, flags);
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;
  unsigned int sent = 0;
  while (sent < vlen) {
    long r = drive(
        fd, PollDir::kWrite,
        [&] {
          return raw_syscall(SYS_sendmmsg, fd, reinterpret_cast<long>(v + sent), vlen - sent, flags | MSG_DONTWAIT);
        },
        [&] { return static_cast<long>(real_sendmmsg(fd, v + sent, vlen - sent, flags)); });
    if (r <= 0) return sent > 0 ? static_cast<int>(sent) : static_cast<int>(r);
    sent += static_cast<unsigned int>(r);
    // The last message counted may have gone out in part.
    struct mmsghdr* last = &v[sent - 1];
    size_t total = 0;
    for (size_t i = 0; i < last->msg_hdr.msg_iovlen; i++) total += last->msg_hdr.msg_iov[i].iov_len;
    if (last->msg_len >= total) continue;
    struct iovec small[16];
    struct iovec* rest = small;
    if (last->msg_hdr.msg_iovlen > 16) {
      rest = static_cast<struct iovec*>(malloc(sizeof(struct iovec) * last->msg_hdr.msg_iovlen));
      if (!rest) return static_cast<int>(sent);
    }
    struct msghdr part = {};
    size_t skip = last->msg_len;
    int n = 0;
    for (size_t i = 0; i < last->msg_hdr.msg_iovlen; i++) {
      const struct iovec& io = last->msg_hdr.msg_iov[i];
      if (skip >= io.iov_len) {
        skip -= io.iov_len;
        continue;
      }
      rest[n++] = {static_cast<char*>(io.iov_base) + skip, io.iov_len - skip};
      skip = 0;
    }
    part.msg_iov = rest;
    part.msg_iovlen = static_cast<size_t>(n);
    ssize_t more = sendmsg(fd, &part, flags);
    if (rest != small) free(rest);
    if (more > 0) last->msg_len += static_cast<unsigned int>(more);
    if (more < 0 || last->msg_len < total) return static_cast<int>(sent);
  }
  return static_cast<int>(sent);
}

MNP_EXPORT int accept4(int fd, struct sockaddr* a, socklen_t* l, int flags) {
  if (!fd_caller_is_g()) return real_accept4(fd, a, l, flags);
  // accept has no per-call non-blocking flag: take a connection only when
  // poll says one is pending (if another thread wins the race, the accept
  // blocks with the P handed off).
  return static_cast<int>(drive(
      fd, PollDir::kRead,
      [&]() -> long {
        struct pollfd p = {fd, POLLIN, 0};
        long r = look_again_on_eintr([&] { return raw_syscall(SYS_poll, reinterpret_cast<long>(&p), 1, 0); });
        if (r < 0) return r;
        if (r == 0) {
          // Nothing pending. Only a listening socket may wait for one:
          // anything else gets accept's own error (ENOTSOCK for a pipe,
          // EINVAL for a socket that is not listening) at once, as natively.
          int on = 0;
          socklen_t len = sizeof on;
          long g = raw_syscall6(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<long>(&on),
                                reinterpret_cast<long>(&len), 0);
          if (g == 0 && on) return -EAGAIN;
        }
        if (p.revents & POLLNVAL) return -EBADF;
        long nfd = handoff([&] { return static_cast<long>(real_accept4(fd, a, l, flags)); });
        return nfd < 0 ? -static_cast<long>(errno) : nfd;
      },
      [&] { return static_cast<long>(real_accept4(fd, a, l, flags)); }));
}

MNP_EXPORT int accept(int fd, struct sockaddr* a, socklen_t* l) { return accept4(fd, a, l, 0); }

// connect has no per-call non-blocking flag. A socket being connected is
// nearly always one the process has just created, so for the duration of
// the call it is made non-blocking (the issue allows it for fds the process
// created), the G parks until the socket is writable, and the result comes
// from SO_ERROR; the program's flags are restored before returning. A
// socket the program made non-blocking itself gets EINPROGRESS as natively.
MNP_EXPORT int connect(int fd, const struct sockaddr* a, socklen_t l) {
  if (!fd_caller_is_g()) return real_connect(fd, a, l);
  long fl = raw_syscall(SYS_fcntl, fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK)) return real_connect(fd, a, l);
  std::atomic<uint32_t>* seq = netpoll_seq(fd, PollDir::kWrite);
  uint32_t seen = seq ? seq->load(std::memory_order_acquire) : 0;
  raw_syscall(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK);
  long r = raw_syscall(SYS_connect, fd, reinterpret_cast<long>(a), l);
  if (r == -EINPROGRESS && seq) {
    int64_t deadline = socket_deadline(fd, PollDir::kWrite);
    for (;;) {
      int w = netpoll_wait(fd, PollDir::kWrite, seen, deadline);
      if (w == ETIMEDOUT) {  // SO_SNDTIMEO expired: Linux says EINPROGRESS
        r = -EINPROGRESS;
        break;
      }
      if (w == EINTR) {  // as natively: the connection goes on in the background
        r = -EINTR;
        break;
      }
      if (w == ECANCELED) {  // likewise, and the program's flags come back first
        raw_syscall(SYS_fcntl, fd, F_SETFL, fl);
        cancel_point();
        raw_syscall(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK);
        continue;
      }
      seen = seq->load(std::memory_order_acquire);
      struct pollfd p = {fd, POLLOUT, 0};
      if (raw_syscall(SYS_poll, reinterpret_cast<long>(&p), 1, 0) > 0 || w == EPERM) {
        // Done: a second connect gives the outcome and leaves the socket
        // as a blocking connect would — connected, or after a failure
        // unconnected, so that a retry starts afresh (reading SO_ERROR
        // instead consumed the error and left the socket half-failed: the
        // next connect said ECONNABORTED, and one after a success 0
        // instead of EISCONN).
        long r2 = raw_syscall(SYS_connect, fd, reinterpret_cast<long>(a), l);
        if (r2 != -EALREADY) {
          r = r2 == -EISCONN ? 0 : r2;
          break;
        }
        int err = 0;  // still in progress (only when the netpoller cannot watch fd)
        socklen_t len = sizeof err;
        raw_syscall6(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, reinterpret_cast<long>(&err),
                     reinterpret_cast<long>(&len), 0);
        r = err ? -err : 0;
        break;
      }
    }
  }
  raw_syscall(SYS_fcntl, fd, F_SETFL, fl);
  return static_cast<int>(raw_to_libc(r));
}

// Gs parked on fd wake after it is closed (waking them before, they could
// park again on the still open fd and never hear of the close) and see
// EBADF when they look again.
MNP_EXPORT int close(int fd) {
  if (!runtime_up || tls_vfork_child) return real_close(fd);
  if (rtfd_is(fd)) return static_cast<int>(raw_to_libc(-EBADF));
  proc_task_close(fd);
  int r = real_close(fd);
  int e = errno;
  signalfd_forget(fd);
  netpoll_close(fd);
  errno = e;
  return r;
}

// libunwind opens its address-validation pipe with pipe2 when preemption
// initialises (and again if it finds the pipe broken): those two fds go to
// the top of the fd range, where programs seldom put their own, and are
// protected like the runtime's (core/rtfd.h). Everyone else gets pipe2.
MNP_EXPORT int pipe2(int fds[2], int flags) noexcept {
  long r = raw_syscall(SYS_pipe2, reinterpret_cast<long>(fds), flags);
  if (r == 0) {
    if (preempt_in_unwinder(__builtin_return_address(0))) {
      for (int i = 0; i < 2; i++) {
        fds[i] = rtfd_move_high(fds[i]);
        rtfd_add(fds[i], RtfdKind::kForeign);
      }
    }
  }
  return static_cast<int>(raw_to_libc(r));
}

// dup2/dup3 onto a runtime fd: the runtime lets go of the number first.
// In a vfork child the fd table is the child's own but the runtime's
// records are the parent's: plain calls.
MNP_EXPORT int dup2(int oldfd, int newfd) noexcept {
  if (tls_vfork_child) return static_cast<int>(raw_to_libc(raw_syscall(SYS_dup2, oldfd, newfd)));
  if (runtime_up && oldfd != newfd && rtfd_is(newfd)) {
    if (raw_syscall(SYS_fcntl, oldfd, F_GETFD) < 0) return static_cast<int>(raw_to_libc(-EBADF));
    rtfd_yield(newfd);
  }
  long r = raw_syscall(SYS_dup2, oldfd, newfd);
  if (r >= 0 && oldfd != newfd) {
    signalfd_forget(newfd);
    netpoll_close(newfd);
  }
  return static_cast<int>(raw_to_libc(r));
}

MNP_EXPORT int dup3(int oldfd, int newfd, int flags) noexcept {
  if (tls_vfork_child) return static_cast<int>(raw_to_libc(raw_syscall(SYS_dup3, oldfd, newfd, flags)));
  if (runtime_up && oldfd != newfd && (flags & ~O_CLOEXEC) == 0 && rtfd_is(newfd)) {
    if (raw_syscall(SYS_fcntl, oldfd, F_GETFD) < 0) return static_cast<int>(raw_to_libc(-EBADF));
    rtfd_yield(newfd);
  }
  long r = raw_syscall(SYS_dup3, oldfd, newfd, flags);
  if (r >= 0) {
    signalfd_forget(newfd);
    netpoll_close(newfd);
  }
  return static_cast<int>(raw_to_libc(r));
}

// CLOSE_RANGE_UNSHARE gives the calling kernel thread (an M, shared by many
// Gs) its own fd table: passed through unchanged, as a known limit.
MNP_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  if (!runtime_up || first > last || (flags & CLOSE_RANGE_UNSHARE) ||
      (flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))  // the kernel's EINVAL
    return static_cast<int>(raw_to_libc(raw_syscall(SYS_close_range, first, last, flags)));
  return close_range_around(first, last, flags);
}

MNP_EXPORT void closefrom(int lowfd) noexcept {
  if (lowfd < 0) lowfd = 0;
  if (!runtime_up) {
    real_closefrom(lowfd);
    return;
  }
  if (close_range_around(static_cast<unsigned>(lowfd), ~0U, 0) != 0) {
    // Kernels before 5.9 have no close_range: close one by one up to the limit.
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lowfd; fd < max; fd++)
      if (!rtfd_is(static_cast<int>(fd))) {
        real_close(static_cast<int>(fd));
        netpoll_close(static_cast<int>(fd));
      }
  }
}

}  // extern "C"
