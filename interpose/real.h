// interpose/real.h — finding the real (glibc) versions of interposed symbols.
//
// Every interposer reaches its real function through a Real<F>: a constinit
// object holding the symbol's name, its glibc version and a pointer that is
// looked up on first use. Nothing is resolved ahead of time, because an
// interposer can be called before the shim's own ELF constructor has run:
// the loader runs the constructors of the program's libraries first
// (libnuma calls getdelim, OpenBLAS pthread_create, jemalloc syscall,
// libcap-ng open, libGLdispatch dlopen, all before main), and a preloaded
// allocator can call into the shim from its very first malloc.
//
// Resolution is dlvsym(RTLD_NEXT), falling back to dlsym: neither allocates
// when the symbol exists. Two threads racing on the first use both look the
// symbol up and store the same value; the pointer is read with a relaxed
// load (a function address needs no ordering with anything else).
#pragma once

#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <utility>

#include "core/base.h"

namespace mnp {

// dlvsym(RTLD_NEXT, name, version), falling back to dlsym; fatal if absent.
void* real_sym(const char* name, const char* version);

template <typename F>
class Real {
 public:
  constexpr Real(const char* name, const char* version) : name_(name), version_(version) {}
  Real(const Real&) = delete;
  Real& operator=(const Real&) = delete;

  F* get() const {
    void* p = fn_.load(std::memory_order_relaxed);
    if (__builtin_expect(p == nullptr, 0)) p = resolve();
    return reinterpret_cast<F*>(p);
  }
  operator F*() const { return get(); }
  template <typename... A>
  decltype(auto) operator()(A&&... a) const {
    return get()(std::forward<A>(a)...);
  }

 private:
  [[gnu::noinline, gnu::cold]] void* resolve() const {
    void* p = real_sym(name_, version_);
    fn_.store(p, std::memory_order_relaxed);
    return p;
  }
  const char* name_;
  const char* version_;
  mutable std::atomic<void*> fn_{nullptr};
};

// A null test on a parameter glibc declares __nonnull: the compiler takes
// such a pointer to be non-null and may drop a plain test (gcc does, clang
// warns), yet a program that passes null must get the real function's
// answer (EFAULT), not a crash in the interposer. The empty asm hides the
// attribute from the optimizer.
template <typename T>
inline bool null_arg(T* p) {
  asm("" : "+r"(p));
  return p == nullptr;
}

// One-time set-up of the families that need more than their real functions
// (hooks into core/, layout probes), run by the shim's constructor. Nothing
// an interposer needs to work may depend on these having run.
void interpose_dl_init();
void interpose_mutex_init();
void interpose_signal_init();
// After the runtime is up (Ms exist, glibc's SIGSETXID handler is installed).
void interpose_setxid_install_handler();
// At start-up, on the main G: wires it to M0 when the initial thread has an
// alternate signal stack enabled (wire.cpp).
void wire_adopt_start_altstack();
int real_thread_create_for_m(void* (*fn)(void*), void* arg);
// Flags of the program's handler for sig, or -1 if it has none (signal.cpp).
int program_signal_flags(int sig);
struct SigAct;
struct G;
// The program's handler for sig; false if it has none (signal.cpp).
bool program_signal_action(int sig, SigAct* out);
// CPU affinity of the G t as the kernel's sched_getaffinity (bytes
// filled, or -errno) and sched_setaffinity (0 or an errno value) answer
// (thread.cpp). set may be null (EFAULT, after the size checks: strace
// probes so), which glibc's nonnull pthread_ declarations do not allow.
long affinity_get_g(G* t, size_t size, cpu_set_t* set);
int affinity_set_g(G* t, size_t size, const cpu_set_t* set);
// Sends sig (1..64) to the G t, whose memory the caller keeps mapped, as
// tgkill sends it to a thread; 0 or an errno value (tid.cpp).
int signal_g(G* t, int sig);
// syscall(nr, a[0..5]) when nr takes a thread id and it is a G's (or nr is
// gettid on a G): true, with the result (-1 and errno on failure) in *ret.
bool tid_syscall(long nr, const long* a, long* ret);
// syscall(nr, a[0..5]) of a call that leaves state on the kernel thread
// (wire.cpp): wires the G; true when it also made the call (result in *ret).
bool wire_syscall(long nr, const long* a, long* ret);
// After a wait-family call: a child reaped ends one fork's wiring (wire.cpp).
void wire_note_wait(pid_t r, const int* status);
void wire_note_waitid(int r, const siginfo_t* si, int options);

}  // namespace mnp
