// interpose/syscall.cpp — calls that may block in the kernel
// (docs/ARCHITECTURE.md, "Blocking calls", classes "handoff" and "block"):
// each goes through the one blocking path (interpose/blocking.h), so while
// it blocks, sysmon hands the P to another M and the other Gs keep running.
// Calls known to block for long (class "block": process waits, signal
// waits, pause, system(), name look-ups) hand the P off at once. Most are
// generated from MNP_HANDOFF_LIST; table.def gives each its real function
// and its class, and the static_asserts below keep the classes and the
// interposers in step.
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

#include <cerrno>
#include <string_view>

#include "core/sched.h"
#include "interpose/blocking.h"
#include "interpose/proctask.h"
#include "interpose/real.h"

using namespace mnp;

// X(name, return, (params), (args)): the real function, its version and
// whether the P is handed off at once (class block) come from table.def.
#define MNP_HANDOFF_LIST(X)                                                                                           \
  X(pread, ssize_t, (int fd, void* b, size_t n, off_t o), (fd, b, n, o))                                              \
  X(pread64, ssize_t, (int fd, void* b, size_t n, off64_t o), (fd, b, n, o))                                          \
  X(preadv64, ssize_t, (int fd, const struct iovec* v, int n, off64_t o), (fd, v, n, o))                              \
  X(pwritev64, ssize_t, (int fd, const struct iovec* v, int n, off64_t o), (fd, v, n, o))                             \
  X(sendfile64, ssize_t, (int o, int i, off64_t* off, size_t n), (o, i, off, n))                                      \
  X(lockf64, int, (int fd, int cmd, off64_t len), (fd, cmd, len))                                                     \
  X(splice, ssize_t, (int a, loff_t* b, int c, loff_t* d, size_t n, unsigned f), (a, b, c, d, n, f))                  \
  X(copy_file_range, ssize_t, (int a, off64_t* b, int c, off64_t* d, size_t n, unsigned f), (a, b, c, d, n, f))       \
  X(semtimedop, int, (int id, struct sembuf* s, size_t n, const struct timespec* t), (id, s, n, t))                   \
  X(mq_receive, ssize_t, (mqd_t q, char* m, size_t n, unsigned* p), (q, m, n, p))                                     \
  X(mq_send, int, (mqd_t q, const char* m, size_t n, unsigned p), (q, m, n, p))                                       \
  X(mq_timedreceive, ssize_t, (mqd_t q, char* m, size_t n, unsigned* p, const struct timespec* t), (q, m, n, p, t))   \
  X(mq_timedsend, int, (mqd_t q, const char* m, size_t n, unsigned p, const struct timespec* t), (q, m, n, p, t))     \
  X(fgets, char*, (char* s, int n, FILE* f), (s, n, f))                                                               \
  X(__fgets_chk, char*, (char* s, size_t size, int n, FILE* f), (s, size, n, f))                                      \
  X(__fread_chk, size_t, (void* p, size_t plen, size_t sz, size_t n, FILE* f), (p, plen, sz, n, f))                   \
  X(__pread_chk, ssize_t, (int fd, void* b, size_t n, off_t o, size_t bl), (fd, b, n, o, bl))                         \
  X(__pread64_chk, ssize_t, (int fd, void* b, size_t n, off64_t o, size_t bl), (fd, b, n, o, bl))                     \
  X(fread, size_t, (void* p, size_t s, size_t n, FILE* f), (p, s, n, f))                                              \
  X(fgetc, int, (FILE * f), (f))                                                                                      \
  X(getc, int, (FILE * f), (f))                                                                                       \
  X(getchar, int, (), ())                                                                                             \
  X(getline, ssize_t, (char** l, size_t* n, FILE* f), (l, n, f))                                                      \
  X(getdelim, ssize_t, (char** l, size_t* n, int d, FILE* f), (l, n, d, f))                                           \
  X(gethostbyname, struct hostent*, (const char* n), (n))                                                             \
  X(gethostbyname2, struct hostent*, (const char* n, int af), (n, af))                                                \
  X(gethostbyname_r, int, (const char* n, struct hostent* h, char* b, size_t l, struct hostent** r, int* e),          \
    (n, h, b, l, r, e))                                                                                               \
  X(gethostbyname2_r, int, (const char* n, int af, struct hostent* h, char* b, size_t l, struct hostent** r, int* e), \
    (n, af, h, b, l, r, e))                                                                                           \
  X(gethostbyaddr, struct hostent*, (const void* a, socklen_t l, int t), (a, l, t))                                   \
  X(gethostbyaddr_r, int,                                                                                             \
    (const void* a, socklen_t al, int t, struct hostent* h, char* b, size_t l, struct hostent** r, int* e),           \
    (a, al, t, h, b, l, r, e))                                                                                        \
  X(getpwnam, struct passwd*, (const char* n), (n))                                                                   \
  X(getpwuid, struct passwd*, (uid_t u), (u))                                                                         \
  X(getpwnam_r, int, (const char* n, struct passwd* p, char* b, size_t l, struct passwd** r), (n, p, b, l, r))        \
  X(getpwuid_r, int, (uid_t u, struct passwd * p, char* b, size_t l, struct passwd** r), (u, p, b, l, r))             \
  X(getgrnam, struct group*, (const char* n), (n))                                                                    \
  X(getgrgid, struct group*, (gid_t g), (g))                                                                          \
  X(getgrnam_r, int, (const char* n, struct group* g, char* b, size_t l, struct group** r), (n, g, b, l, r))          \
  X(getgrgid_r, int, (gid_t i, struct group * g, char* b, size_t l, struct group** r), (i, g, b, l, r))               \
  X(getservbyname, struct servent*, (const char* n, const char* p), (n, p))                                           \
  X(pwrite, ssize_t, (int fd, const void* b, size_t n, off_t o), (fd, b, n, o))                                       \
  X(pwrite64, ssize_t, (int fd, const void* b, size_t n, off64_t o), (fd, b, n, o))                                   \
  X(preadv, ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o))                                  \
  X(pwritev, ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o))                                 \
  X(fsync, int, (int fd), (fd))                                                                                       \
  X(fdatasync, int, (int fd), (fd))                                                                                   \
  X(flock, int, (int fd, int op), (fd, op))                                                                           \
  X(lockf, int, (int fd, int cmd, off_t len), (fd, cmd, len))                                                         \
  X(sendfile, ssize_t, (int o, int i, off_t* off, size_t n), (o, i, off, n))                                          \
  X(msgsnd, int, (int id, const void* p, size_t n, int f), (id, p, n, f))                                             \
  X(msgrcv, ssize_t, (int id, void* p, size_t n, long t, int f), (id, p, n, t, f))                                    \
  X(semop, int, (int id, struct sembuf* s, size_t n), (id, s, n))                                                     \
  X(pause, int, (), ())                                                                                               \
  X(system, int, (const char* c), (c))                                                                                \
  X(getaddrinfo, int, (const char* n, const char* s, const struct addrinfo* h, struct addrinfo** r), (n, s, h, r))    \
  X(getnameinfo, int, (const struct sockaddr* a, socklen_t l, char* h, socklen_t hl, char* s, socklen_t sl, int f),   \
    (a, l, h, hl, s, sl, f))

#define MNP_DEFINE(name, ret, params, args)                                                                   \
  static_assert(is_handed_off(sym_class(#name)),                                                              \
                #name ": a hand-off interposer needs class handoff or block in table.def");                   \
  extern "C" MNP_EXPORT ret name params {                                                                     \
    if constexpr (sym_class(#name) == SymClass::block) return handoff_block(real_##name MNP_COMMA_ARGS args); \
    else return handoff(real_##name MNP_COMMA_ARGS args);                                                     \
  }
#define MNP_COMMA_ARGS(...) __VA_OPT__(, ) __VA_ARGS__
MNP_HANDOFF_LIST(MNP_DEFINE)

// Every symbol of class handoff or block in table.def is interposed: by the
// list above, or by hand, here (wait, open, fcntl and scanf need more than
// the bracket) or in signal.cpp (the sigwait family, sigsuspend).
namespace {
#define MNP_NAME(name, ...) #name,
constexpr std::string_view kGenerated[] = {MNP_HANDOFF_LIST(MNP_NAME)};
#undef MNP_NAME
constexpr std::string_view kByHand[] = {
    // here
    "wait", "waitpid", "wait4", "waitid", "open", "open64", "openat", "openat64", "fcntl", "fcntl64",
    "__isoc99_vfscanf", "__isoc99_vscanf", "__isoc99_fscanf", "__isoc99_scanf",
    // signal.cpp
    "sigwait", "sigwaitinfo", "sigtimedwait", "sigsuspend",
    // setxid.cpp (its group look-up)
    "initgroups"};
constexpr bool listed(const auto& list, std::string_view name) {
  for (std::string_view n : list)
    if (n == name) return true;
  return false;
}
#define MNP_SYM(name, version, cls)                                                                   \
  static_assert(!is_handed_off(SymClass::cls) || listed(kGenerated, #name) || listed(kByHand, #name), \
                #name " has class " #cls " in table.def, but no hand-off interposer");
#include "interpose/table.def"
#undef MNP_SYM
constexpr bool all_handed_off(const auto& names) {
  for (std::string_view n : names)
    if (!is_handed_off(sym_class(n))) return false;
  return true;
}
static_assert(all_handed_off(kByHand), "a name in kByHand has neither class handoff nor block in table.def");
}  // namespace

// ---- process waits ------------------------------------------------------------
// As the list above, and a child reaped may end its forker's wiring
// (wire.cpp): the status is needed even when the caller passes none.
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
    if (int fd; proc_task_try_open(path, flags, &fd)) return fd;                           \
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
    if (int fd; proc_task_try_open(path, flags, &fd)) return fd;                                          \
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
int mnp_isoc99_vfscanf(FILE* f, const char* fmt, va_list ap) { return scan_call(real___isoc99_vfscanf, ap, f, fmt); }
int mnp_isoc99_vscanf(const char* fmt, va_list ap) { return scan_call(real___isoc99_vscanf, ap, fmt); }
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
