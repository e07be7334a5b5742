// interpose/vfork.cpp — vfork (the entry is arch/x86_64/vfork.S).
//
// A vfork child runs in its parent's memory, on the parent G's stack and
// TLS, until it execs or exits; it is another process. Every runtime
// structure it could reach is the parent's: a pthread_sigmask there used to
// rewrite the parent G's recorded mask (the parent's own restore then
// looked like a no-op and its kernel thread kept every signal blocked:
// CPython's forkserver lost SIGCHLD for good), a sigaction rewrote the
// parent's recorded handler, an exec left the parent's exec count raised.
// So the thread is no G while the child runs (tls_g null: interposers take
// it for a thread the runtime does not know and call glibc) and
// tls_vfork_child says so to the few that act for any thread. The parent
// is stopped by the kernel meanwhile, so clearing the shared TLS is safe;
// it restores both when the call returns.
//
// The parent's wait for the child's exec is a blocking call: its P is
// marked in a syscall (sysmon hands it off if the child takes long).
// Unlike fork, vfork does not wire the G (docs/ARCHITECTURE.md, "Wiring").
#include <errno.h>

#include "core/sched.h"

using namespace mnp;

extern "C" MNP_HIDDEN void* mnp_vfork_before() {
  G* g = running_user_g();
  if (g) entersyscall();
  tls_g = nullptr;
  tls_vfork_child = true;
  return g;
}

extern "C" MNP_HIDDEN long mnp_vfork_after(void* token, long r) {
  G* g = static_cast<G*>(token);
  tls_vfork_child = false;
  if (g) {
    tls_g = g;
    exitsyscall();
  }
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}
