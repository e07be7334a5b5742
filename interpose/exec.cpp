// interpose/exec.cpp — the exec family (docs/ARCHITECTURE.md, "Signals":
// exec and the runtime's signal).
//
// Signals pending at a thread survive execve, and the new image starts
// with default actions. The runtime's signal is sent to Ms at any moment
// (sysmon's blocked-M detection, preemption, kicks for pending handlers),
// including to a thread that is inside execve: that instance then reaches
// the new program. With the default signal (SIGURG, ignored by default)
// it is lost harmlessly; with MNP_SIGNAL naming a signal whose default
// action terminates, it killed about one exec in 300. Each function here
// stops every sender and takes what is pending (exec_prepare) before the
// real call, and lets them go on if the call returns (a failed exec).
//
// glibc's exec functions call its internal execve, not this one, so each
// is interposed. The list-argument forms build their vector on the stack
// and go through the vector forms, as glibc's own do.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "core/poke.h"
#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

// Runs one real exec call between exec_prepare and, if it returns,
// exec_abandon; errno is the real call's.
template <typename F>
int guarded(const F& f) {
  if (!runtime_up || tls_vfork_child || !exec_prepare()) return f();
  int r = f();
  int e = errno;
  exec_abandon();
  errno = e;
  return r;
}

// Counts arg0 and the arguments after it up to the terminating null.
size_t count_list(const char* arg0, va_list ap) {
  size_t n = 1;
  if (arg0)
    while (va_arg(ap, char*)) n++;
  return n;
}

void fill_list(char** argv, size_t n, const char* arg0, va_list ap) {
  argv[0] = const_cast<char*>(arg0);
  for (size_t i = 1; i < n; i++) argv[i] = va_arg(ap, char*);
  argv[n] = nullptr;
  if (arg0) (void)va_arg(ap, char*);  // the terminating null
}

}  // namespace

extern "C" {

MNP_EXPORT MNP_STARTUP int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  return guarded([&] { return real_execve(path, argv, envp); });
}

MNP_EXPORT MNP_STARTUP int execv(const char* path, char* const argv[]) noexcept {
  return guarded([&] { return real_execv(path, argv); });
}

MNP_EXPORT MNP_STARTUP int execvp(const char* file, char* const argv[]) noexcept {
  return guarded([&] { return real_execvp(file, argv); });
}

MNP_EXPORT MNP_STARTUP int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  return guarded([&] { return real_execvpe(file, argv, envp); });
}

MNP_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  return guarded([&] { return real_fexecve(fd, argv, envp); });
}

MNP_EXPORT MNP_STARTUP int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                                    int flags) noexcept {
  return guarded([&] { return real_execveat(dirfd, path, argv, envp, flags); });
}

// The list forms' argument vector, on the caller's stack: va_start and
// alloca must both run in the variadic function itself, hence a macro. It
// leaves `ap` open just after the terminating null (execle's envp).
#define MNP_LIST_ARGV(argv, arg0)                                                \
  va_list ap;                                                                    \
  va_start(ap, arg0);                                                            \
  size_t n_ = count_list(arg0, ap);                                              \
  va_end(ap);                                                                    \
  auto** argv = static_cast<char**>(__builtin_alloca((n_ + 1) * sizeof(char*))); \
  va_start(ap, arg0);                                                            \
  fill_list(argv, n_, arg0, ap)

MNP_EXPORT MNP_STARTUP int execl(const char* path, const char* arg, ...) noexcept {
  MNP_LIST_ARGV(argv, arg);
  va_end(ap);
  return execv(path, argv);
}

MNP_EXPORT MNP_STARTUP int execlp(const char* file, const char* arg, ...) noexcept {
  MNP_LIST_ARGV(argv, arg);
  va_end(ap);
  return execvp(file, argv);
}

MNP_EXPORT MNP_STARTUP int execle(const char* path, const char* arg, ...) noexcept {
  MNP_LIST_ARGV(argv, arg);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return execve(path, argv, envp);
}

}  // extern "C"
