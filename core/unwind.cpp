// core/unwind.cpp — the one libunwind loader. See unwind.h.
//
// libunwind is loaded with dlopen(RTLD_LOCAL), never linked: Debian's
// libunwind.so.8 also exports the GCC _Unwind_* API, and as a dependency of
// a preloaded library it would replace libgcc_s for every C++ exception and
// thread cancellation in the program (pthread_once's cleanup, for one,
// stopped running when it was linked). The dlopen is libc's own, found with
// dlvsym: a plain call would bind to the shim's interposer (interpose/dl.cpp),
// which copies TLS images into every G for the program's modules.
#include "core/unwind.h"

#include <dlfcn.h>

#include <atomic>

#include "core/futex.h"

namespace mnp {
namespace {

constinit Unwind g_unwind = {};
constinit Lock g_unwind_lock;
// 0: not tried, 1: loaded, 2: not available.
constinit std::atomic<int> g_unwind_state{0};

using DlopenFn = void*(const char*, int);

bool load() {
  auto* libc_dlopen = reinterpret_cast<DlopenFn*>(dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34"));
  if (!libc_dlopen) return false;
  void* h = libc_dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  Unwind& u = g_unwind;
  u.init_local2 = reinterpret_cast<decltype(u.init_local2)>(dlsym(h, "_ULx86_64_init_local2"));
  u.step = reinterpret_cast<decltype(u.step)>(dlsym(h, "_ULx86_64_step"));
  u.is_signal_frame = reinterpret_cast<decltype(u.is_signal_frame)>(dlsym(h, "_ULx86_64_is_signal_frame"));
  u.get_reg = reinterpret_cast<decltype(u.get_reg)>(dlsym(h, "_ULx86_64_get_reg"));
  u.get_proc_name = reinterpret_cast<decltype(u.get_proc_name)>(dlsym(h, "_ULx86_64_get_proc_name"));
  u.set_caching_policy = reinterpret_cast<decltype(u.set_caching_policy)>(dlsym(h, "_ULx86_64_set_caching_policy"));
  u.local_addr_space = static_cast<unw_addr_space_t*>(dlsym(h, "_ULx86_64_local_addr_space"));
  Dl_info info;
  if (u.init_local2 && dladdr(reinterpret_cast<void*>(u.init_local2), &info)) u.base = info.dli_fbase;
  return u.init_local2 && u.step && u.is_signal_frame && u.get_reg && u.get_proc_name && u.set_caching_policy &&
         u.local_addr_space && u.base;
}

}  // namespace

const Unwind* unwind_get() {
  int s = g_unwind_state.load(std::memory_order_acquire);
  if (s == 0) {
    LockGuard lk(g_unwind_lock);
    s = g_unwind_state.load(std::memory_order_relaxed);
    if (s == 0) {
      s = load() ? 1 : 2;
      g_unwind_state.store(s, std::memory_order_release);
    }
  }
  return s == 1 ? &g_unwind : nullptr;
}

}  // namespace mnp
