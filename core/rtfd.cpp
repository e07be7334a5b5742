// core/rtfd.cpp — see rtfd.h.
#include "core/rtfd.h"

#include <fcntl.h>
#include <sys/resource.h>

#include "core/base.h"
#include "core/compact.h"
#include "core/futex.h"
#include "core/netpoll.h"
#include "core/preempt.h"

namespace mnp {

namespace {

constexpr int kMax = 8;
struct Entry {
  int fd;
  RtfdKind kind;
};
constinit Lock g_lock;
constinit Entry g_fds[kMax] = {};
constinit int g_n = 0;

}  // namespace

void rtfd_add(int fd, RtfdKind kind) {
  if (fd < 0) return;
  LockGuard lk(g_lock);
  for (int k = 0; k < g_n; k++)
    if (g_fds[k].fd == fd) return;
  if (g_n == kMax) return;
  int i = g_n++;
  while (i > 0 && g_fds[i - 1].fd > fd) {
    g_fds[i] = g_fds[i - 1];
    i--;
  }
  g_fds[i] = {fd, kind};
}

void rtfd_remove(int fd) {
  LockGuard lk(g_lock);
  for (int i = 0; i < g_n; i++)
    if (g_fds[i].fd == fd) {
      for (int j = i + 1; j < g_n; j++) g_fds[j - 1] = g_fds[j];
      g_n--;
      return;
    }
}

bool rtfd_is(int fd) {
  LockGuard lk(g_lock);
  for (int i = 0; i < g_n; i++)
    if (g_fds[i].fd == fd) return true;
  return false;
}

int rtfd_list(int* out, int max) {
  LockGuard lk(g_lock);
  int n = g_n < max ? g_n : max;
  for (int i = 0; i < n; i++) out[i] = g_fds[i].fd;
  return n;
}

void rtfd_yield(int fd) {
  bool found = false;
  RtfdKind kind = RtfdKind::kOwned;
  {
    LockGuard lk(g_lock);
    for (int i = 0; i < g_n; i++)
      if (g_fds[i].fd == fd) {
        found = true;
        kind = g_fds[i].kind;
      }
  }
  if (!found) return;
  if (kind == RtfdKind::kOwned) {
    if (compact_owns_fd(fd)) compact_relocate_fd(fd);
    else netpoll_relocate(fd);  // registers the copy, removes fd
  } else if (kind == RtfdKind::kProbe) {
    rtfd_remove(fd);  // its owner sees that before its next read
  } else {
    preempt_unwinder_lost();
    rtfd_remove(fd);
  }
}

int rtfd_dup_high(int fd) {
  struct rlimit rl;
  long want = 0;
  if (raw_syscall(SYS_getrlimit, RLIMIT_NOFILE, reinterpret_cast<long>(&rl)) == 0 && rl.rlim_cur >= 64)
    want = static_cast<long>(rl.rlim_cur > 1024 ? 1024 : rl.rlim_cur) - 16;
  long nfd = raw_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, want);
  if (nfd < 0 && want > 0) nfd = raw_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0);  // the top is full
  return nfd < 0 ? -1 : static_cast<int>(nfd);
}

int rtfd_move_high(int fd) {
  int nfd = rtfd_dup_high(fd);
  if (nfd < 0) return fd;
  raw_syscall(SYS_close, fd);
  return nfd;
}

}  // namespace mnp
