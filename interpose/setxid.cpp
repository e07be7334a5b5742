// interpose/setxid.cpp — setuid and friends from a G (docs/ARCHITECTURE.md,
// "Signals": SIGSETXID).
//
// glibc changes credentials of every thread by signalling each thread on its
// lists with SIGSETXID (33); the handler clears a bit in THREAD_SELF and
// wakes the caller. Two things go wrong for Gs:
//  1. The handler runs on whatever G the kernel thread is running, so it
//     clears the bit in that G's TCB and the caller waits forever. We install
//     a wrapper that loads the FS base glibc knows for this kernel thread
//     (found by kernel tid, never through TLS) around glibc's handler.
//  2. The caller skips the thread whose TCB is THREAD_SELF. A G's TCB is on
//     no list — except the main G, whose TCB is the initial thread's: called
//     from the main G on another M, glibc would skip M0. So the call itself
//     runs with the FS base of the calling M's own glibc TCB.
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

struct KSigaction {  // the kernel's struct sigaction for rt_sigaction
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};
constexpr int kSigSetxid = 33;
using SigHandler = void (*)(int, siginfo_t*, void*);
constinit SigHandler g_glibc_setxid = nullptr;

void setxid_wrapper(int sig, siginfo_t* si, void* uc) {
  uintptr_t saved = arch_get_fs();
  M* mp = m_by_tid(raw_gettid());
  uintptr_t own = mp ? reinterpret_cast<uintptr_t>(mp->glibc_tcb) : saved;
  if (own != saved) arch_set_fs(own);
  g_glibc_setxid(sig, si, uc);
  if (own != saved) arch_set_fs(saved);
}

// Runs fn with FS = the current M's glibc TCB; errno travels back to the G.
template <typename Fn>
int on_m_tcb(Fn fn) {
  G* g = get_user_g();
  if (!runtime_up || !g) return fn();
  uintptr_t saved = arch_get_fs();
  uintptr_t own = reinterpret_cast<uintptr_t>(g->m->glibc_tcb);
  if (own == saved) return fn();
  arch_set_fs(own);
  int r = fn();
  int e = errno;  // the M's errno
  arch_set_fs(saved);
  errno = e;
  return r;
}

}  // namespace

namespace mnp {

void interpose_setxid_install_handler() {
  KSigaction old{};
  if (raw_syscall(SYS_rt_sigaction, kSigSetxid, 0, reinterpret_cast<long>(&old), 8) != 0 || !old.handler ||
      reinterpret_cast<uintptr_t>(old.handler) < 2) {
    raw_print("glibc's SIGSETXID handler is not installed; setuid from threads may hang");
    return;
  }
  g_glibc_setxid = old.handler;
  KSigaction nw = old;
  nw.handler = setxid_wrapper;
  raw_syscall(SYS_rt_sigaction, kSigSetxid, reinterpret_cast<long>(&nw), 0, 8);
}

}  // namespace mnp

extern "C" {
MNP_EXPORT int setuid(uid_t u) noexcept {
  return on_m_tcb([&] { return real_setuid(u); });
}
MNP_EXPORT int setgid(gid_t g) noexcept {
  return on_m_tcb([&] { return real_setgid(g); });
}
MNP_EXPORT int seteuid(uid_t u) noexcept {
  return on_m_tcb([&] { return real_seteuid(u); });
}
MNP_EXPORT int setegid(gid_t g) noexcept {
  return on_m_tcb([&] { return real_setegid(g); });
}
MNP_EXPORT int setreuid(uid_t a, uid_t b) noexcept {
  return on_m_tcb([&] { return real_setreuid(a, b); });
}
MNP_EXPORT int setregid(gid_t a, gid_t b) noexcept {
  return on_m_tcb([&] { return real_setregid(a, b); });
}
MNP_EXPORT int setresuid(uid_t a, uid_t b, uid_t c) noexcept {
  return on_m_tcb([&] { return real_setresuid(a, b, c); });
}
MNP_EXPORT int setresgid(gid_t a, gid_t b, gid_t c) noexcept {
  return on_m_tcb([&] { return real_setresgid(a, b, c); });
}
MNP_EXPORT int setgroups(size_t n, const gid_t* l) noexcept {
  return on_m_tcb([&] { return real_setgroups(n, l); });
}
}
