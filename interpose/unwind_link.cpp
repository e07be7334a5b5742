// interpose/unwind_link.cpp — the unwinder, found when an unwind needs it.
//
// The one function of the shim that unwinding may leave (pthread_once,
// interpose/once.c: C built with -fexceptions, so that its cleanup runs when
// the init routine throws or is cancelled) refers to two functions of the
// unwinder: __gcc_personality_v0, which the unwinder calls for that frame,
// and _Unwind_Resume, which the cleanup calls to go on unwinding. Linked
// directly, they made libgcc_s.so.1 a library the shim needs, so every
// process loaded it at start-up: about 175 us of a /bin/true on the
// no-FSGSBASE VM, for a library most C programs never use.
//
// Here they are hidden forwarders to the definitions the dynamic linker
// would have bound: the first in the process's global scope (libgcc_s's, or
// a program's own unwinder's), looked up the first time the unwinder calls
// the personality for a frame of pthread_once. An unwinder is running then,
// so the library is loaded already (glibc loads libgcc_s itself before
// cancelling or exiting a thread); if the scope has none, libgcc_s.so.1 is
// loaded. _Unwind_Resume is only reached from a landing pad the personality
// chose, so after the lookup.
#include <dlfcn.h>

#include <atomic>

#include "core/base.h"
#include "interpose/real.h"

namespace {

struct UnwindException;
struct UnwindContext;
using PersonalityFn = int(int, int, unsigned long, UnwindException*, UnwindContext*);
using ResumeFn = void(UnwindException*);

constinit std::atomic<PersonalityFn*> g_personality{nullptr};
constinit std::atomic<ResumeFn*> g_resume{nullptr};

void* find_unwinder_sym(const char* name) {
  if (void* p = dlsym(RTLD_DEFAULT, name)) return p;
  void* h = mnp::real_dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_GLOBAL);
  void* p = h ? dlsym(h, name) : nullptr;
  if (!p) mnp::fatal("cannot find the unwinder (libgcc_s.so.1) to unwind through pthread_once");
  return p;
}

[[gnu::noinline]] void link_unwinder() {
  g_personality.store(reinterpret_cast<PersonalityFn*>(find_unwinder_sym("__gcc_personality_v0")),
                      std::memory_order_relaxed);
  g_resume.store(reinterpret_cast<ResumeFn*>(find_unwinder_sym("_Unwind_Resume")), std::memory_order_release);
}

}  // namespace

extern "C" {

// Tail calls once linked: the unwinder sees the caller's frame as if it had
// called the real function itself.
[[gnu::visibility("hidden")]] int __gcc_personality_v0(int version, int actions, unsigned long exception_class,
                                                       UnwindException* e, UnwindContext* c) {
  PersonalityFn* fn = g_personality.load(std::memory_order_acquire);
  if (MNP_UNLIKELY(!fn)) {
    link_unwinder();
    fn = g_personality.load(std::memory_order_relaxed);
  }
  return fn(version, actions, exception_class, e, c);
}

[[gnu::visibility("hidden")]] void _Unwind_Resume(UnwindException* e) {
  ResumeFn* fn = g_resume.load(std::memory_order_acquire);
  if (MNP_UNLIKELY(!fn)) {
    link_unwinder();
    fn = g_resume.load(std::memory_order_relaxed);
  }
  fn(e);
}

}  // extern "C"
