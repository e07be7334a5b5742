// interpose/syscall.cpp — calls that may block in the kernel
// (docs/ARCHITECTURE.md, "Blocking calls", class "handoff"): each goes
// through the one blocking path (interpose/blocking.h), so while it blocks,
// sysmon hands the P to another M and the other Gs keep running. Calls known
// to block for long (process waits, pause, system(), name look-ups) hand the
// P off at once (handoff_block).
//
// The real function runs on the G's own TLS, so errno, cancellation and
// restart semantics are glibc's own. Sockets, pipes and other pollable fds
// go to the netpoller instead (net.cpp, poll.cpp).
// Both the 32- and 64-bit-offset names are interposed, so the headers must
// not redirect one to the other.
#undef _FILE_OFFSET_BITS
// glibc's headers carry extern-inline bodies of getchar and getline, which this
// file defines: gcc accepts the second body of a gnu_inline function, clang
// does not, so the headers' copies are left out.
#ifndef __NO_INLINE__
#define __NO_INLINE__ 1
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <grp.h>
#include <mqueue.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "core/sched.h"
#include "interpose/blocking.h"
#include "interpose/real.h"

using namespace mnp;

// X(name, version, return, (params), (args), handoff|handoff_block)
#define MNP_HANDOFF_LIST(X)                                                                                            \
  X(pread, "GLIBC_2.2.5", ssize_t, (int fd, void* b, size_t n, off_t o), (fd, b, n, o), handoff)                       \
  X(pread64, "GLIBC_2.2.5", ssize_t, (int fd, void* b, size_t n, off64_t o), (fd, b, n, o), handoff)                   \
  X(preadv64, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off64_t o), (fd, v, n, o), handoff)        \
  X(pwritev64, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off64_t o), (fd, v, n, o), handoff)       \
  X(sendfile64, "GLIBC_2.3", ssize_t, (int o, int i, off64_t* off, size_t n), (o, i, off, n), handoff)                 \
  X(lockf64, "GLIBC_2.2.5", int, (int fd, int cmd, off64_t len), (fd, cmd, len), handoff)                              \
  X(splice, "GLIBC_2.5", ssize_t, (int a, loff_t* b, int c, loff_t* d, size_t n, unsigned f), (a, b, c, d, n, f),      \
    handoff)                                                                                                           \
  X(copy_file_range, "GLIBC_2.27", ssize_t, (int a, off64_t* b, int c, off64_t* d, size_t n, unsigned f),              \
    (a, b, c, d, n, f), handoff)                                                                                       \
  X(semtimedop, "GLIBC_2.3.3", int, (int id, struct sembuf* s, size_t n, const struct timespec* t), (id, s, n, t),     \
    handoff)                                                                                                           \
  X(mq_receive, "GLIBC_2.34", ssize_t, (mqd_t q, char* m, size_t n, unsigned* p), (q, m, n, p), handoff)               \
  X(mq_send, "GLIBC_2.34", int, (mqd_t q, const char* m, size_t n, unsigned p), (q, m, n, p), handoff)                 \
  X(mq_timedreceive, "GLIBC_2.34", ssize_t, (mqd_t q, char* m, size_t n, unsigned* p, const struct timespec* t),       \
    (q, m, n, p, t), handoff)                                                                                          \
  X(mq_timedsend, "GLIBC_2.34", int, (mqd_t q, const char* m, size_t n, unsigned p, const struct timespec* t),         \
    (q, m, n, p, t), handoff)                                                                                          \
  X(fgets, "GLIBC_2.2.5", char*, (char* s, int n, FILE* f), (s, n, f), handoff)                                        \
  X(__fgets_chk, "GLIBC_2.4", char*, (char* s, size_t size, int n, FILE* f), (s, size, n, f), handoff)                 \
  X(__fread_chk, "GLIBC_2.7", size_t, (void* p, size_t plen, size_t sz, size_t n, FILE* f), (p, plen, sz, n, f),       \
    handoff)                                                                                                           \
  X(__pread_chk, "GLIBC_2.4", ssize_t, (int fd, void* b, size_t n, off_t o, size_t bl), (fd, b, n, o, bl), handoff)    \
  X(__pread64_chk, "GLIBC_2.4", ssize_t, (int fd, void* b, size_t n, off64_t o, size_t bl), (fd, b, n, o, bl),         \
    handoff)                                                                                                           \
  X(fread, "GLIBC_2.2.5", size_t, (void* p, size_t s, size_t n, FILE* f), (p, s, n, f), handoff)                       \
  X(fgetc, "GLIBC_2.2.5", int, (FILE * f), (f), handoff)                                                               \
  X(getc, "GLIBC_2.2.5", int, (FILE * f), (f), handoff)                                                                \
  X(getchar, "GLIBC_2.2.5", int, (), (), handoff)                                                                      \
  X(getline, "GLIBC_2.2.5", ssize_t, (char** l, size_t* n, FILE* f), (l, n, f), handoff)                               \
  X(getdelim, "GLIBC_2.2.5", ssize_t, (char** l, size_t* n, int d, FILE* f), (l, n, d, f), handoff)                    \
  X(gethostbyname, "GLIBC_2.2.5", struct hostent*, (const char* n), (n), handoff_block)                                \
  X(gethostbyname2, "GLIBC_2.2.5", struct hostent*, (const char* n, int af), (n, af), handoff_block)                   \
  X(gethostbyname_r, "GLIBC_2.2.5", int,                                                                               \
    (const char* n, struct hostent* h, char* b, size_t l, struct hostent** r, int* e), (n, h, b, l, r, e),             \
    handoff_block)                                                                                                     \
  X(gethostbyname2_r, "GLIBC_2.2.5", int,                                                                              \
    (const char* n, int af, struct hostent* h, char* b, size_t l, struct hostent** r, int* e), (n, af, h, b, l, r, e), \
    handoff_block)                                                                                                     \
  X(gethostbyaddr, "GLIBC_2.2.5", struct hostent*, (const void* a, socklen_t l, int t), (a, l, t), handoff_block)      \
  X(gethostbyaddr_r, "GLIBC_2.2.5", int,                                                                               \
    (const void* a, socklen_t al, int t, struct hostent* h, char* b, size_t l, struct hostent** r, int* e),            \
    (a, al, t, h, b, l, r, e), handoff_block)                                                                          \
  X(getpwnam, "GLIBC_2.2.5", struct passwd*, (const char* n), (n), handoff_block)                                      \
  X(getpwuid, "GLIBC_2.2.5", struct passwd*, (uid_t u), (u), handoff_block)                                            \
  X(getpwnam_r, "GLIBC_2.2.5", int, (const char* n, struct passwd* p, char* b, size_t l, struct passwd** r),           \
    (n, p, b, l, r), handoff_block)                                                                                    \
  X(getpwuid_r, "GLIBC_2.2.5", int, (uid_t u, struct passwd * p, char* b, size_t l, struct passwd** r),                \
    (u, p, b, l, r), handoff_block)                                                                                    \
  X(getgrnam, "GLIBC_2.2.5", struct group*, (const char* n), (n), handoff_block)                                       \
  X(getgrgid, "GLIBC_2.2.5", struct group*, (gid_t g), (g), handoff_block)                                             \
  X(getgrnam_r, "GLIBC_2.2.5", int, (const char* n, struct group* g, char* b, size_t l, struct group** r),             \
    (n, g, b, l, r), handoff_block)                                                                                    \
  X(getgrgid_r, "GLIBC_2.2.5", int, (gid_t i, struct group * g, char* b, size_t l, struct group** r), (i, g, b, l, r), \
    handoff_block)                                                                                                     \
  X(getservbyname, "GLIBC_2.2.5", struct servent*, (const char* n, const char* p), (n, p), handoff_block)              \
  X(pwrite, "GLIBC_2.2.5", ssize_t, (int fd, const void* b, size_t n, off_t o), (fd, b, n, o), handoff)                \
  X(pwrite64, "GLIBC_2.2.5", ssize_t, (int fd, const void* b, size_t n, off64_t o), (fd, b, n, o), handoff)            \
  X(preadv, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o), handoff)            \
  X(pwritev, "GLIBC_2.10", ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o), handoff)           \
  X(fsync, "GLIBC_2.2.5", int, (int fd), (fd), handoff)                                                                \
  X(fdatasync, "GLIBC_2.2.5", int, (int fd), (fd), handoff)                                                            \
  X(flock, "GLIBC_2.2.5", int, (int fd, int op), (fd, op), handoff)                                                    \
  X(lockf, "GLIBC_2.2.5", int, (int fd, int cmd, off_t len), (fd, cmd, len), handoff)                                  \
  X(sendfile, "GLIBC_2.2.5", ssize_t, (int o, int i, off_t* off, size_t n), (o, i, off, n), handoff)                   \
  X(msgsnd, "GLIBC_2.2.5", int, (int id, const void* p, size_t n, int f), (id, p, n, f), handoff)                      \
  X(msgrcv, "GLIBC_2.2.5", ssize_t, (int id, void* p, size_t n, long t, int f), (id, p, n, t, f), handoff)             \
  X(semop, "GLIBC_2.2.5", int, (int id, struct sembuf* s, size_t n), (id, s, n), handoff)                              \
  X(pause, "GLIBC_2.2.5", int, (), (), handoff_block)                                                                  \
  X(system, "GLIBC_2.2.5", int, (const char* c), (c), handoff_block)                                                   \
  X(getaddrinfo, "GLIBC_2.2.5", int, (const char* n, const char* s, const struct addrinfo* h, struct addrinfo** r),    \
    (n, s, h, r), handoff_block)                                                                                       \
  X(getnameinfo, "GLIBC_2.2.5", int,                                                                                   \
    (const struct sockaddr* a, socklen_t l, char* h, socklen_t hl, char* s, socklen_t sl, int f),                      \
    (a, l, h, hl, s, sl, f), handoff_block)

#define MNP_DECLARE_REAL(name, ver, ret, params, args, how) \
  using name##_fn = ret params;                             \
  constinit Real<name##_fn> real_##name{#name, ver};
namespace {
MNP_HANDOFF_LIST(MNP_DECLARE_REAL)
}

#define MNP_DEFINE(name, ver, ret, params, args, how) \
  extern "C" MNP_EXPORT ret name params { return how(real_##name.get() MNP_COMMA_ARGS args); }
#define MNP_COMMA_ARGS(...) __VA_OPT__(, ) __VA_ARGS__
MNP_HANDOFF_LIST(MNP_DEFINE)

// ---- process waits ------------------------------------------------------------
// As the list above, and a child reaped may end its forker's wiring
// (wire.cpp): the status is needed even when the caller passes none.
namespace {
using WaitFn = pid_t(int*);
using WaitpidFn = pid_t(pid_t, int*, int);
using Wait4Fn = pid_t(pid_t, int*, int, struct rusage*);
using WaitidFn = int(idtype_t, id_t, siginfo_t*, int);
constinit Real<WaitFn> real_wait{"wait", "GLIBC_2.2.5"};
constinit Real<WaitpidFn> real_waitpid{"waitpid", "GLIBC_2.2.5"};
constinit Real<Wait4Fn> real_wait4{"wait4", "GLIBC_2.2.5"};
constinit Real<WaitidFn> real_waitid{"waitid", "GLIBC_2.2.5"};
}  // namespace

extern "C" MNP_EXPORT pid_t wait(int* st) {
  int local;
  int* s = st ? st : &local;
  pid_t r = handoff_block(real_wait.get(), s);
  wire_note_wait(r, s);
  return r;
}
extern "C" MNP_EXPORT pid_t waitpid(pid_t p, int* st, int o) {
  int local;
  int* s = st ? st : &local;
  pid_t r = handoff(real_waitpid.get(), p, s, o);
  wire_note_wait(r, s);
  return r;
}
extern "C" MNP_EXPORT pid_t wait4(pid_t p, int* st, int o, struct rusage* ru) {
  int local;
  int* s = st ? st : &local;
  pid_t r = handoff(real_wait4.get(), p, s, o, ru);
  wire_note_wait(r, s);
  return r;
}
extern "C" MNP_EXPORT int waitid(idtype_t t, id_t i, siginfo_t* si, int o) {
  int r = handoff(real_waitid.get(), t, i, si, o);
  wire_note_waitid(r, si, o);
  return r;
}

// ---- variadic calls --------------------------------------------------------
namespace {
using OpenFn = int(const char*, int, ...);
using OpenatFn = int(int, const char*, int, ...);
using FcntlFn = int(int, int, ...);
constinit Real<OpenFn> real_open{"open", "GLIBC_2.2.5"};
constinit Real<OpenFn> real_open64{"open64", "GLIBC_2.2.5"};
constinit Real<OpenatFn> real_openat{"openat", "GLIBC_2.4"};
constinit Real<OpenatFn> real_openat64{"openat64", "GLIBC_2.4"};
constinit Real<FcntlFn> real_fcntl{"fcntl", "GLIBC_2.2.5"};
constinit Real<FcntlFn> real_fcntl64{"fcntl64", "GLIBC_2.28"};

mode_t open_mode(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}
// Lock waits are the only blocking fcntl commands.
bool fcntl_blocks(int cmd) { return cmd == F_SETLKW || cmd == F_OFD_SETLKW; }
}  // namespace

// open of a FIFO waits for the other end: every open is bracketed (the fast
// path of entersyscall/exitsyscall costs a few ns).
#define MNP_OPEN(name, real)                                                               \
  extern "C" MNP_EXPORT int name(const char* path, int flags, ...) {                       \
    va_list ap;                                                                            \
    va_start(ap, flags);                                                                   \
    mode_t mode = open_mode(flags, ap);                                                    \
    va_end(ap);                                                                            \
    return handoff(                                                                        \
        +[](const char* p, int f, mode_t m) { return real(p, f, m); }, path, flags, mode); \
  }
MNP_OPEN(open, real_open)
MNP_OPEN(open64, real_open64)
#define MNP_OPENAT(name, real)                                                                            \
  extern "C" MNP_EXPORT int name(int dir, const char* path, int flags, ...) {                             \
    va_list ap;                                                                                           \
    va_start(ap, flags);                                                                                  \
    mode_t mode = open_mode(flags, ap);                                                                   \
    va_end(ap);                                                                                           \
    return handoff(                                                                                       \
        +[](int d, const char* p, int f, mode_t m) { return real(d, p, f, m); }, dir, path, flags, mode); \
  }
MNP_OPENAT(openat, real_openat)
MNP_OPENAT(openat64, real_openat64)
#define MNP_FCNTL(name, real)                                               \
  extern "C" MNP_EXPORT int name(int fd, int cmd, ...) {                    \
    va_list ap;                                                             \
    va_start(ap, cmd);                                                      \
    long arg = va_arg(ap, long);                                            \
    va_end(ap);                                                             \
    if (!fcntl_blocks(cmd)) return real(fd, cmd, arg);                      \
    return handoff(                                                         \
        +[](int f, int c, long a) { return real(f, c, a); }, fd, cmd, arg); \
  }
MNP_FCNTL(fcntl, real_fcntl)
MNP_FCNTL(fcntl64, real_fcntl64)

// The scanf family: programs built with glibc's headers call the ISO C99
// names (__isoc99_*), so those are what is interposed.
namespace {
using VfscanfFn = int(FILE*, const char*, va_list);
using VscanfFn = int(const char*, va_list);
constinit Real<VfscanfFn> real_vfscanf{"__isoc99_vfscanf", "GLIBC_2.7"};
constinit Real<VscanfFn> real_vscanf{"__isoc99_vscanf", "GLIBC_2.7"};
}  // namespace
extern "C" MNP_EXPORT int mnp_isoc99_vfscanf(FILE* f, const char* fmt, va_list ap) __asm__("__isoc99_vfscanf");
extern "C" MNP_EXPORT int mnp_isoc99_vscanf(const char* fmt, va_list ap) __asm__("__isoc99_vscanf");
extern "C" MNP_EXPORT int mnp_isoc99_fscanf(FILE* f, const char* fmt, ...) __asm__("__isoc99_fscanf");
extern "C" MNP_EXPORT int mnp_isoc99_scanf(const char* fmt, ...) __asm__("__isoc99_scanf");
namespace {
// f(a..., ap): a call made again (the runtime's EINTR) reads the variable
// arguments afresh.
template <typename F, typename... A>
int scan_call(const F& f, va_list ap, A... a) {
  return blocking_call([&] {
    va_list aq;
    va_copy(aq, ap);
    int r = f(a..., aq);
    va_end(aq);
    return r;
  });
}
}  // namespace
int mnp_isoc99_vfscanf(FILE* f, const char* fmt, va_list ap) { return scan_call(real_vfscanf, ap, f, fmt); }
int mnp_isoc99_vscanf(const char* fmt, va_list ap) { return scan_call(real_vscanf, ap, fmt); }
int mnp_isoc99_fscanf(FILE* f, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = mnp_isoc99_vfscanf(f, fmt, ap);
  va_end(ap);
  return r;
}
int mnp_isoc99_scanf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = mnp_isoc99_vscanf(fmt, ap);
  va_end(ap);
  return r;
}
