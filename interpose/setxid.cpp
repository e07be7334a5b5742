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
//     runs with the FS base of the calling M's own TCB.
//  3. The threads of Ms are on no list either (core/mthread.h): once glibc's
//     call has succeeded, the runtime has each of them make the same system
//     call (mthread_xid_broadcast), and aborts as glibc does when one
//     fails where the caller succeeded. No M's thread is made or ends
//     meanwhile. initgroups, whose setgroups glibc calls internally, is
//     done here as getgrouplist and setgroups.
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/mthread.h"
#include "core/sched.h"
#include "interpose/blocking.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

struct KSigaction {  // the kernel's struct sigaction for rt_sigaction
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};
using SigHandler = void (*)(int, siginfo_t*, void*);
constinit SigHandler g_glibc_setxid = nullptr;

void setxid_wrapper(int sig, siginfo_t* si, void* uc) {
  if (mthread_xid_serve()) return;
  uintptr_t saved = arch_get_fs();
  M* mp = m_by_tid(raw_gettid());
  uintptr_t own = mp ? reinterpret_cast<uintptr_t>(mp->glibc_tcb) : saved;
  if (own != saved) arch_set_fs(own);
  g_glibc_setxid(sig, si, uc);
  if (own != saved) arch_set_fs(saved);
}

// errno's address function, called through a pointer the compiler cannot
// see through: __errno_location is declared const, so the compiler may call
// it once for both sides of an FS switch; a failed setuid from a G then left
// its errno at 0 (EPERM went to the M's TCB).
using ErrnoLocation = int* (*)();
constinit volatile ErrnoLocation g_errno_location = __errno_location;

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
  int e = *g_errno_location();
  arch_set_fs(saved);
  *g_errno_location() = e;
  return r;
}

// The real call on the M's TCB, then the same system call on every other
// M's thread.
template <typename Fn>
int change_ids(long nr, long a, long b, long c, Fn fn) {
  mthread_xid_lock();
  int r = on_m_tcb(fn);
  int e = errno;
  if (r == 0 && !mthread_xid_broadcast(nr, a, b, c))
    fatal("a credential change failed on a runtime thread where the caller's succeeded");
  mthread_xid_unlock();
  errno = e;
  return r;
}

int set_groups(size_t n, const gid_t* l) {
  return change_ids(SYS_setgroups, static_cast<long>(n), reinterpret_cast<long>(l), 0,
                    [&] { return real_setgroups(n, l); });
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
  return change_ids(SYS_setuid, static_cast<long>(u), 0, 0, [&] { return real_setuid(u); });
}
MNP_EXPORT int setgid(gid_t g) noexcept {
  return change_ids(SYS_setgid, static_cast<long>(g), 0, 0, [&] { return real_setgid(g); });
}
MNP_EXPORT int seteuid(uid_t u) noexcept {
  return change_ids(SYS_setresuid, -1, static_cast<long>(u), -1, [&] { return real_seteuid(u); });
}
MNP_EXPORT int setegid(gid_t g) noexcept {
  return change_ids(SYS_setresgid, -1, static_cast<long>(g), -1, [&] { return real_setegid(g); });
}
MNP_EXPORT int setreuid(uid_t a, uid_t b) noexcept {
  return change_ids(SYS_setreuid, static_cast<long>(a), static_cast<long>(b), 0, [&] { return real_setreuid(a, b); });
}
MNP_EXPORT int setregid(gid_t a, gid_t b) noexcept {
  return change_ids(SYS_setregid, static_cast<long>(a), static_cast<long>(b), 0, [&] { return real_setregid(a, b); });
}
MNP_EXPORT int setresuid(uid_t a, uid_t b, uid_t c) noexcept {
  return change_ids(SYS_setresuid, static_cast<long>(a), static_cast<long>(b), static_cast<long>(c),
                    [&] { return real_setresuid(a, b, c); });
}
MNP_EXPORT int setresgid(gid_t a, gid_t b, gid_t c) noexcept {
  return change_ids(SYS_setresgid, static_cast<long>(a), static_cast<long>(b), static_cast<long>(c),
                    [&] { return real_setresgid(a, b, c); });
}
MNP_EXPORT int setgroups(size_t n, const gid_t* l) noexcept { return set_groups(n, l); }
// As glibc's: the groups NSS lists for the user, then setgroups, with as
// many of them as the kernel takes. The look-up may ask a directory server
// (class block: the P is handed on at once); the setgroups is this file's
// own, not whatever the symbol binds to.
MNP_EXPORT int initgroups(const char* user, gid_t group) {
  int n = 64;
  auto* groups = static_cast<gid_t*>(malloc(n * sizeof(gid_t)));
  for (;;) {
    if (!groups) {
      errno = ENOMEM;
      return -1;
    }
    int want = n;
    if (handoff_block(getgrouplist, user, group, groups, &want) >= 0) {
      n = want;
      break;
    }
    n = want > n ? want : 2 * n;
    auto* more = static_cast<gid_t*>(realloc(groups, n * sizeof(gid_t)));
    if (!more) free(groups);
    groups = more;
  }
  long limit = sysconf(_SC_NGROUPS_MAX);
  if (limit > 0 && n > limit) n = static_cast<int>(limit);
  int r;
  do r = set_groups(static_cast<size_t>(n), groups);
  while (r == -1 && errno == EINVAL && --n > 0);
  int e = errno;
  free(groups);
  errno = e;
  return r;
}
}
