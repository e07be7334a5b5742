// interpose/signalfd.cpp — reads of a signalfd on a G (docs/ARCHITECTURE.md,
// "Signals").
//
// The kernel's signalfd returns the signals pending for the calling kernel
// thread and for the process. Under the shim the calling thread is an M,
// and the signals pending for one G (pthread_kill, tgkill of its id, raise,
// while the G blocks them) are kept by the runtime (core/sigpend.h), so the
// kernel's read alone would never see them. So `signalfd` records each
// signalfd's mask here, and `read` of a recorded fd on a G returns, in the
// kernel's order, the G's own pending signals among the mask, then what the
// kernel has (the M's and the process's, read without blocking), then the
// process-directed signals the runtime keeps. With nothing pending, a
// blocking fd parks the G on the netpoller (the kernel makes the signalfd
// readable for the process's signals) with its fd published in
// G::sigfd_fd/sigfd_mask, so that a sender that leaves a signal pending
// for it bumps the fd's netpoll words and the G looks again.
//
// Rejected: re-sending a G's signal to the M's kernel thread so that the
// kernel's read finds it (the M runs other Gs, whose handlers or signalfd
// reads would take it).
//
// poll and ppoll on a G add POLLIN for a recorded signalfd with a signal of
// its mask pending for the G alone, or for the process while the G blocks
// it, and are woken by such a signal the same way.
//
// Not covered: a signalfd reached through dup() or inherited across exec
// is not recorded (its reads see only what the kernel has), and select and
// the epoll family report only the kernel's readiness (the M's and the
// process's signals).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/uio.h>

#include <atomic>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/poke.h"
#include "core/sched.h"
#include "core/sigpend.h"
#include "interpose/fdcall.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

// Recorded signalfds: fd and mask (0: free entry). Few programs make more
// than one; past the table's end a signalfd is not recorded.
struct Entry {
  std::atomic<int> fd{-1};
  std::atomic<uint64_t> mask{0};
};
constexpr int kEntries = 64;
constinit Entry g_fds[kEntries];
constinit std::atomic<int> g_used{0};  // entries ever used: lookups scan this far

uint64_t mask_of(int fd) {
  int n = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (g_fds[i].fd.load(std::memory_order_acquire) == fd) return g_fds[i].mask.load(std::memory_order_acquire);
  return 0;
}

uint64_t all_masks() {
  uint64_t m = 0;
  int n = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++) m |= g_fds[i].mask.load(std::memory_order_acquire);
  return m;
}

// A signal kept for the process (sigpend_put_for): the reads waiting on a
// signalfd that holds it look again.
void kick_for(int sig) {
  uint64_t bit = uint64_t{1} << (sig - 1);
  int n = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++) {
    int fd = g_fds[i].fd.load(std::memory_order_acquire);
    if (fd >= 0 && (g_fds[i].mask.load(std::memory_order_acquire) & bit)) netpoll_kick_fd(fd);
  }
}

void record(int fd, uint64_t mask) {
  set_sigpend_put_hook(kick_for);
  int n = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (g_fds[i].fd.load(std::memory_order_acquire) == fd) {
      g_fds[i].mask.store(mask, std::memory_order_release);
      return;
    }
  for (int i = 0; i < kEntries; i++) {
    int f = -1;
    if (!g_fds[i].fd.compare_exchange_strong(f, -2, std::memory_order_acq_rel)) continue;
    g_fds[i].mask.store(mask, std::memory_order_release);
    g_fds[i].fd.store(fd, std::memory_order_release);
    int u = g_used.load(std::memory_order_relaxed);
    while (u < i + 1 && !g_used.compare_exchange_weak(u, i + 1, std::memory_order_acq_rel)) {
    }
    return;
  }
}

// The kernel's signalfd_siginfo for a siginfo the runtime kept (sigpend):
// the fields the kernel fills for that siginfo layout.
void to_ssi(const siginfo_t& si, struct signalfd_siginfo* out) {
  __builtin_memset(out, 0, sizeof *out);
  out->ssi_signo = static_cast<uint32_t>(si.si_signo);
  out->ssi_errno = si.si_errno;
  out->ssi_code = si.si_code;
  out->ssi_pid = static_cast<uint32_t>(si.si_pid);
  out->ssi_uid = si.si_uid;
  if (si.si_code < 0) {  // SI_QUEUE, SI_TKILL, ...: the value sent along
    out->ssi_int = si.si_int;
    out->ssi_ptr = reinterpret_cast<uint64_t>(si.si_ptr);
  } else if (si.si_signo == SIGCHLD && si.si_code > 0) {
    out->ssi_status = si.si_status;
    out->ssi_utime = static_cast<uint64_t>(si.si_utime);
    out->ssi_stime = static_cast<uint64_t>(si.si_stime);
  }
}

bool fd_nonblocking(int fd) {
  long fl = raw_syscall(SYS_fcntl, fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

// Fills up to cap records; returns how many, or -errno from the kernel.
long take_pending(G* g, int fd, uint64_t mask, struct signalfd_siginfo* out, size_t cap) {
  size_t k = 0;
  siginfo_t si;
  while (k < cap && sigpend_take_in(g, mask, &si, Pending::kOwn)) to_ssi(si, &out[k++]);
  if (k < cap) {
    struct iovec v = {&out[k], (cap - k) * sizeof *out};
    long r = runtime_call_refused(kRefusedNowaitIo)
                 ? -ENOSYS
                 : raw_syscall6(SYS_preadv2, fd, reinterpret_cast<long>(&v), 1, -1, -1, RWF_NOWAIT);
    if (r == -EOPNOTSUPP || r == -ENOSYS) {
      // A kernel whose signalfd refuses RWF_NOWAIT (before 6.7), or a
      // seccomp filter that traps preadv2 (core/base.h): read only what a
      // zero-timeout poll says is there.
      struct pollfd p = {fd, POLLIN, 0};
      struct timespec zero = {0, 0};
      r = look_again_on_eintr([&] {
        return raw_syscall6(SYS_ppoll, reinterpret_cast<long>(&p), 1, reinterpret_cast<long>(&zero), 0, 0, 0);
      });
      if (r > 0 && (p.revents & POLLIN)) r = raw_syscall6(SYS_readv, fd, reinterpret_cast<long>(&v), 1, 0, 0, 0);
      else if (r >= 0) r = -EAGAIN;
    }
    if (r > 0) k += static_cast<size_t>(r) / sizeof *out;
    else if (r < 0 && r != -EAGAIN && k == 0) return r;
  }
  while (k < cap && sigpend_take_in(g, mask, &si, Pending::kProcess)) to_ssi(si, &out[k++]);
  return static_cast<long>(k);
}

}  // namespace

namespace mnp {

// read() of fd on a G: true (and *out set, libc-style) if fd is a recorded
// signalfd; false for every other fd (interpose/net.cpp reads it).
bool signalfd_read(int fd, void* buf, size_t n, long* out) {
  if (g_used.load(std::memory_order_acquire) == 0) return false;
  uint64_t mask = mask_of(fd);
  if (!mask || n < sizeof(struct signalfd_siginfo)) return false;
  G* g = get_user_g();
  auto* rec = static_cast<struct signalfd_siginfo*>(buf);
  size_t cap = n / sizeof *rec;
  std::atomic<uint32_t>* seq = netpoll_seq(fd, PollDir::kRead);
  if (!seq) return false;
  // Published before the first look at the G's slots (sig_send_to_g).
  g->sigfd_fd.store(fd, std::memory_order_seq_cst);
  g->sigfd_mask.store(mask, std::memory_order_seq_cst);
  long r;
  for (;;) {
    uint32_t seen = seq->load(std::memory_order_acquire);
    r = take_pending(g, fd, mask, rec, cap);
    if (r > 0) {
      r *= static_cast<long>(sizeof *rec);
      break;
    }
    if (r < 0) break;
    if (fd_nonblocking(fd)) {
      r = -EAGAIN;
      break;
    }
    int w = netpoll_wait(fd, PollDir::kRead, seen, kNever);
    if (w == EINTR) {  // a handler without SA_RESTART ran (netpoll.h)
      r = -EINTR;
      break;
    }
    if (w == EPERM) {  // epoll refused it: the kernel's blocking read
      g->sigfd_mask.store(0, std::memory_order_seq_cst);
      *out = handoff([&] {
        return static_cast<long>(
            raw_to_libc(raw_syscall(SYS_read, fd, reinterpret_cast<long>(buf), static_cast<long>(n))));
      });
      return true;
    }
    if (w == ECANCELED) {
      g->sigfd_mask.store(0, std::memory_order_seq_cst);
      cancel_point();  // pthread_cancel: unwinds from here
      g->sigfd_mask.store(mask, std::memory_order_seq_cst);
    }
  }
  g->sigfd_mask.store(0, std::memory_order_seq_cst);
  *out = raw_to_libc(r);
  return true;
}

long signalfd_poll_merge(SignalfdPoll* sp, struct pollfd* fds, unsigned long n, long r) {
  if (g_used.load(std::memory_order_acquire) == 0) return r;
  G* g = get_user_g();
  if (!g) return r;
  for (unsigned long i = 0; i < n; i++) {
    if (fds[i].fd < 0 || !(fds[i].events & (POLLIN | POLLRDNORM))) continue;
    uint64_t mask = mask_of(fds[i].fd);
    if (!mask) continue;
    if (!sp->armed) {  // published before the first look at the slots
      g->sigfd_fd.store(fds[i].fd, std::memory_order_seq_cst);
      g->sigfd_mask.store(mask, std::memory_order_seq_cst);
      sp->armed = true;
    } else if (g->sigfd_fd.load(std::memory_order_relaxed) == fds[i].fd) {
      // Any one of the poll's signalfds wakes the whole wait.
    } else {
      g->sigfd_mask.fetch_or(mask, std::memory_order_seq_cst);
    }
    // Its own, and the process's that it blocks (one it lets in is for a
    // handler to run).
    uint64_t pend = sigpend_bits_for_own(g) | (sigpend_bits_for(g) & sigset_bits(&g->sigmask));
    if (!(pend & mask)) continue;
    if (fds[i].revents == 0) r++;
    fds[i].revents |= static_cast<short>(fds[i].events & (POLLIN | POLLRDNORM));
  }
  return r;
}

SignalfdPoll::~SignalfdPoll() {
  if (armed) get_user_g()->sigfd_mask.store(0, std::memory_order_seq_cst);
}

// close() or dup2() onto fd: it is no signalfd of ours any more.
void signalfd_forget(int fd) {
  int n = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < n; i++) {
    int f = fd;
    if (g_fds[i].fd.compare_exchange_strong(f, -2, std::memory_order_acq_rel)) {
      g_fds[i].mask.store(0, std::memory_order_release);
      g_fds[i].fd.store(-1, std::memory_order_release);
    }
  }
}

}  // namespace mnp

extern "C" {

MNP_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) noexcept {
  // A signalfd for the runtime's signal: the runtime moves off it, to none
  // that another signalfd takes (core/poke.cpp, poke_signal_release).
  if (!null_arg(mask)) poke_signal_release(sigset_bits(mask) | all_masks());
  int r = real_signalfd(fd, mask, flags);
  // The kernel never reports SIGKILL or SIGSTOP through a signalfd.
  if (r >= 0 && !null_arg(mask)) record(r, sigset_bits(mask) & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))));
  return r;
}

}  // extern "C"
