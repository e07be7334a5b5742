// interpose/syscall.cpp — calls that may block in the kernel (DESIGN §5,
// class "handoff"): each is bracketed by entersyscall/exitsyscall, so while
// it blocks, sysmon hands the P to another M and the other Gs keep running.
// Calls known to block for long (process waits, signal waits, pause,
// system(), name look-ups) hand the P off at once.
//
// The real function runs on the G's own TLS, so errno, cancellation and
// restart semantics are glibc's own. The netpoller (blocking-syscalls issue)
// will move sockets, pipes and other pollable fds out of this list.
// Both the 32- and 64-bit-offset names are interposed, so the headers must
// not redirect one to the other.
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {
template <typename R, typename... A>
inline R handoff(R (*f)(A...), A... a) {
  entersyscall();
  R r = f(a...);
  exitsyscall();
  return r;
}
template <typename R, typename... A>
inline R handoff_block(R (*f)(A...), A... a) {
  entersyscall_block();
  R r = f(a...);
  exitsyscall();
  return r;
}
}  // namespace

// X(name, version, return, (params), (args), handoff|handoff_block)
#define MNP_HANDOFF_LIST(X)                                                                                           \
  X(pread, "GLIBC_2.2.5", ssize_t, (int fd, void* b, size_t n, off_t o), (fd, b, n, o), handoff)                     \
  X(pread64, "GLIBC_2.2.5", ssize_t, (int fd, void* b, size_t n, off64_t o), (fd, b, n, o), handoff)                 \
  X(pwrite, "GLIBC_2.2.5", ssize_t, (int fd, const void* b, size_t n, off_t o), (fd, b, n, o), handoff)              \
  X(pwrite64, "GLIBC_2.2.5", ssize_t, (int fd, const void* b, size_t n, off64_t o), (fd, b, n, o), handoff)          \
  X(preadv, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o), handoff)          \
  X(pwritev, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o), handoff)         \
  X(fsync, "GLIBC_2.2.5", int, (int fd), (fd), handoff)                                                              \
  X(fdatasync, "GLIBC_2.2.5", int, (int fd), (fd), handoff)                                                          \
  X(connect, "GLIBC_2.2.5", int, (int fd, const struct sockaddr* a, socklen_t l), (fd, a, l), handoff)               \
  X(poll, "GLIBC_2.2.5", int, (struct pollfd * p, nfds_t n, int t), (p, n, t), handoff)                              \
  X(ppoll, "GLIBC_2.4", int, (struct pollfd * p, nfds_t n, const struct timespec* t, const sigset_t* s),              \
    (p, n, t, s), handoff)                                                                                            \
  X(select, "GLIBC_2.2.5", int, (int n, fd_set* r, fd_set* w, fd_set* e, struct timeval* t), (n, r, w, e, t),         \
    handoff)                                                                                                          \
  X(pselect, "GLIBC_2.2.5", int,                                                                                      \
    (int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* t, const sigset_t* s), (n, r, w, e, t, s),        \
    handoff)                                                                                                          \
  X(epoll_wait, "GLIBC_2.3.2", int, (int fd, struct epoll_event* e, int n, int t), (fd, e, n, t), handoff)           \
  X(epoll_pwait, "GLIBC_2.6", int, (int fd, struct epoll_event* e, int n, int t, const sigset_t* s),                  \
    (fd, e, n, t, s), handoff)                                                                                        \
  X(flock, "GLIBC_2.2.5", int, (int fd, int op), (fd, op), handoff)                                                  \
  X(lockf, "GLIBC_2.2.5", int, (int fd, int cmd, off_t len), (fd, cmd, len), handoff)                                \
  X(sendfile, "GLIBC_2.2.5", ssize_t, (int o, int i, off_t* off, size_t n), (o, i, off, n), handoff)                 \
  X(msgsnd, "GLIBC_2.2.5", int, (int id, const void* p, size_t n, int f), (id, p, n, f), handoff)                    \
  X(msgrcv, "GLIBC_2.2.5", ssize_t, (int id, void* p, size_t n, long t, int f), (id, p, n, t, f), handoff)           \
  X(semop, "GLIBC_2.2.5", int, (int id, struct sembuf* s, size_t n), (id, s, n), handoff)                           \
  X(wait, "GLIBC_2.2.5", pid_t, (int* st), (st), handoff_block)                                                      \
  X(waitpid, "GLIBC_2.2.5", pid_t, (pid_t p, int* st, int o), (p, st, o), handoff)                                   \
  X(wait4, "GLIBC_2.2.5", pid_t, (pid_t p, int* st, int o, struct rusage* r), (p, st, o, r), handoff)                \
  X(waitid, "GLIBC_2.2.5", int, (idtype_t t, id_t i, siginfo_t* s, int o), (t, i, s, o), handoff)                    \
  X(pause, "GLIBC_2.2.5", int, (), (), handoff_block)                                                                \
  X(sigwait, "GLIBC_2.2.5", int, (const sigset_t* s, int* sig), (s, sig), handoff_block)                             \
  X(sigwaitinfo, "GLIBC_2.2.5", int, (const sigset_t* s, siginfo_t* i), (s, i), handoff_block)                       \
  X(sigtimedwait, "GLIBC_2.2.5", int, (const sigset_t* s, siginfo_t* i, const struct timespec* t), (s, i, t),         \
    handoff_block)                                                                                                    \
  X(sigsuspend, "GLIBC_2.2.5", int, (const sigset_t* s), (s), handoff_block)                                         \
  X(system, "GLIBC_2.2.5", int, (const char* c), (c), handoff_block)                                                 \
  X(getaddrinfo, "GLIBC_2.2.5", int, (const char* n, const char* s, const struct addrinfo* h, struct addrinfo** r),   \
    (n, s, h, r), handoff_block)                                                                                      \
  X(getnameinfo, "GLIBC_2.2.5", int,                                                                                  \
    (const struct sockaddr* a, socklen_t l, char* h, socklen_t hl, char* s, socklen_t sl, int f),                     \
    (a, l, h, hl, s, sl, f), handoff_block)

#define MNP_DECLARE_REAL(name, ver, ret, params, args, how) \
  using name##_fn = ret params;                           \
  constinit name##_fn* real_##name = nullptr;
namespace {
MNP_HANDOFF_LIST(MNP_DECLARE_REAL)
}

namespace mnp {
void interpose_syscall_init() {
#define MNP_RESOLVE(name, ver, ret, params, args, how) resolve_real(real_##name, #name, ver);
  MNP_HANDOFF_LIST(MNP_RESOLVE)
}
}  // namespace mnp

#define MNP_DEFINE(name, ver, ret, params, args, how) \
  extern "C" MNP_EXPORT ret name params { return how(real_##name MNP_COMMA_ARGS args); }
#define MNP_COMMA_ARGS(...) __VA_OPT__(, ) __VA_ARGS__
MNP_HANDOFF_LIST(MNP_DEFINE)
