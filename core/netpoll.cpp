// core/netpoll.cpp — see netpoll.h.
#include "core/netpoll.h"

#include <sys/epoll.h>
#include <sys/mman.h>

#include <cerrno>
#include <climits>
#include <new>

#include "core/base.h"
#include "core/futex.h"
#include "core/sched.h"
#include "core/sema.h"

namespace mnp {

int os_thread_start(void* (*fn)(void*), void* arg);  // sched.cpp

namespace {

struct FdState {
  std::atomic<uint32_t> rseq{0};
  std::atomic<uint32_t> wseq{0};
};

// Two-level table: fd >> 12 selects a lazily mapped chunk of 4096 states.
constexpr int kChunkBits = 12;
constexpr int kChunk = 1 << kChunkBits;
constexpr int kChunks = 1 << 12;  // fds up to 16M
constinit std::atomic<FdState*> g_chunks[kChunks] = {};
constinit Lock g_chunk_lock;
constinit int g_epfd = -1;

FdState* state(int fd) {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  auto& slot = g_chunks[fd >> kChunkBits];
  FdState* c = slot.load(std::memory_order_acquire);
  if (!c) {
    LockGuard lk(g_chunk_lock);
    c = slot.load(std::memory_order_relaxed);
    if (!c) {
      long r = raw_syscall6(SYS_mmap, 0, sizeof(FdState) * kChunk, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (r < 0 && r > -4096) fatal("cannot allocate netpoll state");
      c = reinterpret_cast<FdState*>(r);
      slot.store(c, std::memory_order_release);
    }
  }
  return &c[fd & (kChunk - 1)];
}

FdState* state_if_any(int fd) {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  FdState* c = g_chunks[fd >> kChunkBits].load(std::memory_order_acquire);
  return c ? &c[fd & (kChunk - 1)] : nullptr;
}

void bump(std::atomic<uint32_t>* w) {
  w->fetch_add(1, std::memory_order_release);
  sema_wake(w, INT_MAX);
}

void dispatch(const struct epoll_event* ev, long n) {
  for (long i = 0; i < n; i++) {
    FdState* s = state_if_any(ev[i].data.fd);
    if (!s) continue;
    uint32_t e = ev[i].events;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) bump(&s->rseq);
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) bump(&s->wseq);
  }
}

// Edge-triggered events go to exactly one epoll_wait caller, so this thread
// and idle Ms (netpoll_poll_now) can share the instance.
void* netpoll_main(void*) {
  struct epoll_event ev[256];
  for (;;) {
    long n = raw_syscall6(SYS_epoll_wait, g_epfd, reinterpret_cast<long>(ev), 256, -1, 0, 0);
    if (n < 0) {
      if (n == -EINTR) continue;
      fatal("netpoller: epoll_wait failed");
    }
    dispatch(ev, n);
  }
}

}  // namespace

int netpoll_poll_now() {
  if (g_epfd < 0) return 0;
  struct epoll_event ev[64];
  long n = raw_syscall6(SYS_epoll_wait, g_epfd, reinterpret_cast<long>(ev), 64, 0, 0, 0);
  if (n <= 0) return 0;
  dispatch(ev, n);
  return static_cast<int>(n);
}

bool netpoll_start() {
  long fd = raw_syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  if (fd < 0) return false;
  g_epfd = static_cast<int>(fd);
  return os_thread_start(netpoll_main, nullptr) == 0;
}

void netpoll_after_fork() {
  new (&g_chunk_lock) Lock();
  if (g_epfd < 0) return;
  raw_syscall(SYS_close, g_epfd);
  g_epfd = -1;
  netpoll_start();
}

std::atomic<uint32_t>* netpoll_seq(int fd, PollDir dir) {
  FdState* s = state(fd);
  if (!s) return nullptr;
  return dir == PollDir::kRead ? &s->rseq : &s->wseq;
}

int netpoll_wait(int fd, PollDir dir, uint32_t seen, int64_t deadline) {
  if (g_epfd < 0) return EPERM;
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  ev.data.fd = fd;
  long r = raw_syscall(SYS_epoll_ctl, g_epfd, EPOLL_CTL_ADD, fd, reinterpret_cast<long>(&ev));
  if (r < 0 && r != -EEXIST) return r == -EBADF ? 0 : EPERM;  // EBADF: retry reports it
  int w = sema_wait(netpoll_seq(fd, dir), seen, deadline);
  return w == ETIMEDOUT ? ETIMEDOUT : 0;
}

void netpoll_close(int fd) {
  FdState* s = state_if_any(fd);
  if (!s || g_epfd < 0) return;
  if (sema_count(&s->rseq) == 0 && sema_count(&s->wseq) == 0) return;
  raw_syscall(SYS_epoll_ctl, g_epfd, EPOLL_CTL_DEL, fd, 0);
  bump(&s->rseq);
  bump(&s->wseq);
}

}  // namespace mnp
