// interpose/stdio.cpp — flockfile from a G.
//
// glibc's stream lock (_IO_lock_t: a low-level lock, a recursion count and
// the owner's TCB) is correct for Gs as it is: each G has its own TCB, so
// ownership and recursion follow the G across Ms. What breaks is waiting:
// glibc's lll_lock sleeps in the kernel and takes the whole M with it, while
// the owner G may sit on that M's run queue (a G that yields inside
// flockfile/funlockfile is the common case). A G therefore waits by trying
// the lock and yielding its P between tries, so the owner always gets to run.
//
// Stdio calls that lock internally (printf while another G holds the stream
// locked across a yield) still wait in the kernel; sysmon's detection of Ms
// blocked in uncovered code (blocking-syscalls issue) covers them.
#include <stdio.h>

#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

extern "C" MNP_EXPORT void flockfile(FILE* fp) noexcept {
  // Inside a wrapped call (program code it runs) the G has no P to yield:
  // glibc's own wait, in the kernel, as the call's.
  G* g = running_user_g();
  if (!g || g->syscall_depth != 0) return real_flockfile(fp);
  while (real_ftrylockfile(fp) != 0) {
    // Nothing else was runnable here: the owner runs on another M. Back off
    // briefly instead of hammering the lock word.
    if (!yield())
      for (int i = 0; i < 64; i++) cpu_relax();
  }
}
