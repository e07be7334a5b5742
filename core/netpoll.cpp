// core/netpoll.cpp — see netpoll.h.
#include "core/netpoll.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <new>

#include "core/base.h"
#include "core/futex.h"
#include "core/gmem.h"
#include "core/tcb.h"
#include "core/rtfd.h"
#include "core/sched.h"
#include "core/sema.h"
#include "core/sigpend.h"
#include "core/timer.h"
#include "core/cancel.h"

namespace mnp {

namespace {

// State of one wait (one G, one or more fds). The G links its entries while
// kArming; a waker or the timer that finds it still kArming only records the
// outcome, and the G's park commit (kArming -> kParked) then fails, so the G
// never sleeps. Only a waker that moves it out of kParked readies the G.
enum : uint32_t { kArming, kParked, kWoken, kTimedOut, kInterrupted, kCanceled };

struct Wait {
  G* g;
  Intr intr;
  uint64_t blocked;      // bit sig-1: that signal does not interrupt this wait
  const CallMask* call;  // the masked call this wait is part of, or null
  std::atomic<uint32_t> state{kArming};
  CancelWait cw{nullptr};  // every netpoll wait is a cancellation point (core/cancel.h)
};

struct FdState;

// One fd of a wait, on the waiting G's stack (or heap for a large poll).
// Linked on its fd's list while `on` is set; a waker writes `on` last, so
// the G can tell without the fd lock that nobody will touch the entry again.
struct Entry {
  Wait* w;
  uint32_t dirs;
  Entry* next;
  Entry* prev;
  std::atomic<FdState*> on;
};

struct FdState {
  std::atomic<uint32_t> rseq;
  std::atomic<uint32_t> wseq;
  Lock lock;
  Entry* head;                 // (lock)
  std::atomic<uint8_t> known;  // kKnown* bits, what the fd is known to be; reset when the fd closes
};
// FdState::known: fstat said it is no file (netpoll_fd_is_file); the
// kernel refused an RWF_NOWAIT read or write on it (netpoll_fd_refuses_nowait);
// the netpoller reported EPOLLRDHUP for it (netpoll_fd_read_shut).
enum : uint8_t { kKnownNotFile = 1, kKnownNoNowaitRead = 2, kKnownNoNowaitWrite = 4, kKnownRdHup = 8 };

// Two-level table: fd >> 12 selects a lazily mapped chunk of 4096 states
// (zeroed memory is a valid FdState).
constexpr int kChunkBits = 12;
constexpr int kChunk = 1 << kChunkBits;
constexpr int kChunks = 1 << 12;  // fds up to 16M
MNP_COLD_BSS constinit std::atomic<FdState*> g_chunks[kChunks] = {};
// One past the highest chunk made (written under g_chunk_lock, after the
// chunk's pointer): the scans and a fork child's reset look no further, and
// do not fault in 32 KiB of null pointers to find that out.
constinit std::atomic<int> g_chunks_end{0};
constinit Lock g_chunk_lock;
// Both fds sit near the top of RLIMIT_NOFILE and are protected from the
// program (core/rtfd.h); g_fd_lock orders a move of the eventfd (the
// program dup2s onto its number) against reads and writes of it, which must
// never reach a file of the program's.
constinit std::atomic<int> g_epfd{-1};
constinit int g_breakfd = -1;  // eventfd that interrupts the poller (written under g_fd_lock, atomically)
constinit Lock g_fd_lock;
constexpr uint64_t kBreakTag = ~0ULL;                // epoll data of the eventfd (fds are data.u64 = fd)
constinit std::atomic<int32_t> g_waiters{0};         // Gs parked on fds
constinit std::atomic<uint32_t> g_poller{0};         // an M is (about to be) blocked in epoll_wait
constinit std::atomic<int64_t> g_poll_until{0};      // its deadline; 0 while it computes one
constinit std::atomic<uint32_t> g_break_pending{0};  // eventfd written, not yet read
constinit std::atomic<int64_t> g_last_poll{0};
// Program signals whose handler ran and that have not been turned into an
// EINTR yet (netpoll_signal_arrived), per signal and by whether the handler
// asked for SA_RESTART.
constexpr int kNsig = 65;
constinit std::atomic<uint32_t> g_sig_any{0};
constinit std::atomic<uint32_t> g_sig_norestart[kNsig] = {};
constinit std::atomic<uint32_t> g_sig_restart[kNsig] = {};
// The G a process-directed signal goes to: the main G (the forking G in a
// child of fork).
constinit std::atomic<G*> g_sig_main{nullptr};
// Interrupters of sleeps: one at a time (they run in normal context, on
// sysmon or the poller), so a G's sleep_intr_busy has one setter.
constinit Lock g_sleep_lock;
constinit std::atomic<bool> g_have_pwait2{true};

FdState* state(int fd) {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  auto& slot = g_chunks[fd >> kChunkBits];
  FdState* c = slot.load(std::memory_order_acquire);
  if (!c) {
    LockGuard lk(g_chunk_lock);
    c = slot.load(std::memory_order_relaxed);
    if (!c) {
      long r = raw_syscall6(SYS_mmap, 0, sizeof(FdState) * kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
      if (r < 0 && r > -4096) fatal("cannot allocate netpoll state");
      c = reinterpret_cast<FdState*>(r);
      slot.store(c, std::memory_order_release);
      if ((fd >> kChunkBits) >= g_chunks_end.load(std::memory_order_relaxed))
        g_chunks_end.store((fd >> kChunkBits) + 1, std::memory_order_release);
    }
  }
  return &c[fd & (kChunk - 1)];
}

FdState* state_if_any(int fd) {
  if (fd < 0 || fd >= kChunk * kChunks) return nullptr;
  FdState* c = g_chunks[fd >> kChunkBits].load(std::memory_order_acquire);
  return c ? &c[fd & (kChunk - 1)] : nullptr;
}

void link_locked(FdState* s, Entry* e) {
  e->prev = nullptr;
  e->next = s->head;
  if (s->head) s->head->prev = e;
  s->head = e;
  e->on.store(s, std::memory_order_relaxed);
}

void unlink_locked(FdState* s, Entry* e) {
  if (e->prev) e->prev->next = e->next;
  else s->head = e->next;
  if (e->next) e->next->prev = e->prev;
  e->on.store(nullptr, std::memory_order_release);  // last touch of e
}

// Moves w out of kArming/kParked into `to`. Returns the state it left, or
// kWoken/kTimedOut if someone else decided first.
uint32_t decide(Wait* w, uint32_t to) {
  uint32_t st = w->state.load(std::memory_order_acquire);
  while ((st == kArming || st == kParked) &&
         !w->state.compare_exchange_weak(st, to, std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
  return st;
}

// Bumps fd's sequence words for `dirs` and wakes the waits that want them.
// Returns how many Gs it readied.
int bump_and_wake(FdState* s, uint32_t dirs) {
  if (dirs & kPollRead) s->rseq.fetch_add(1, std::memory_order_release);
  if (dirs & kPollWrite) s->wseq.fetch_add(1, std::memory_order_release);
  return ready_batched([&](G** woken, int, bool* more) {
    int k = 0;
    s->lock.lock();
    for (Entry* e = s->head; e;) {
      Entry* next = e->next;
      if (e->dirs & dirs) {
        if (k == kReadyBatch) {
          *more = true;
          break;
        }
        G* g = e->w->g;
        if (decide(e->w, kWoken) == kParked) woken[k++] = g;
        unlink_locked(s, e);
      }
      e = next;
    }
    s->lock.unlock();
    return k;
  });
}

// Takes the break eventfd's event out of ev[0..n) (compacting the fd
// events to the front) and returns how many fd events remain. The eventfd
// is level-triggered and only the poller (drain = true) resets it: a
// harvest without blocking that happened to see a break meant for a
// sleeping poller must leave it for that poller, or the poller would sleep
// through the new timer.
int drop_break(struct epoll_event* ev, int n, bool drain) {
  int out = 0;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 == kBreakTag) {
      if (drain) {
        uint64_t v;
        LockGuard lk(g_fd_lock);
        if (g_breakfd >= 0) raw_syscall(SYS_read, g_breakfd, reinterpret_cast<long>(&v), sizeof v);
        g_break_pending.store(0, std::memory_order_release);
      }
      continue;
    }
    ev[out++] = ev[i];
  }
  return out;
}

G* wait_timeout(Timer* t) {
  auto* w = static_cast<Wait*>(t->arg);
  G* g = w->g;
  return decide(w, kTimedOut) == kParked ? g : nullptr;
}

// pthread_cancel of the waiting G: decided like a timeout.
void wait_cancel(CancelWait* cw) {
  auto* w = reinterpret_cast<Wait*>(reinterpret_cast<char*>(cw) - offsetof(Wait, cw));
  G* g = w->g;
  if (decide(w, kCanceled) == kParked) ready(g, true);
}

// Publishes w for pthread_cancel; a request already due decides it at once.
void arm_cancel(Wait* w) {
  w->cw.wake = wait_cancel;
  if (w->g && cancel_arm(w->g, &w->cw)) decide(w, kCanceled);
}

// In a masked call, a handler that ran on the G since the mask took effect
// (the kernel delivers to the G's M while the G arms its wait, or a Lock
// held it back until the G released it) has ended the call: EINTR, not a
// park. Checked here because from park() on the M is held, so a handler
// for this M is raised again only after the switch, where it finds no G
// of this wait (g0 or another G: the wait is then woken as a parked one).
bool park_commit(G* g, void* arg) {
  auto* w = static_cast<Wait*>(arg);
  if (w->call && g->handlers_run != w->call->ran) decide(w, kInterrupted);
  uint32_t st = kArming;
  return w->state.compare_exchange_strong(st, kParked, std::memory_order_acq_rel);
}

// Adds fd to the epoll instance (edge-triggered, both directions). Returns
// 0, EBADF (the retry reports it) or EPERM (epoll cannot watch it).
int register_fd(int fd) {
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  ev.data.u64 = static_cast<uint32_t>(fd);
  long r = raw_syscall(SYS_epoll_ctl, g_epfd.load(std::memory_order_relaxed), EPOLL_CTL_ADD, fd,
                       reinterpret_cast<long>(&ev));
  if (r == 0 || r == -EEXIST) return 0;
  return r == -EBADF ? EBADF : EPERM;
}

bool open_instance() {
  long ep = raw_syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  if (ep < 0) return false;
  long bf = raw_syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (bf < 0) {
    raw_syscall(SYS_close, ep);
    return false;
  }
  ep = rtfd_move_high(static_cast<int>(ep));
  bf = rtfd_move_high(static_cast<int>(bf));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;  // level-triggered: see drop_break
  ev.data.u64 = kBreakTag;
  if (raw_syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, bf, reinterpret_cast<long>(&ev)) != 0) {
    raw_syscall(SYS_close, ep);
    raw_syscall(SYS_close, bf);
    return false;
  }
  __atomic_store_n(&g_breakfd, static_cast<int>(bf), __ATOMIC_RELEASE);
  g_epfd.store(static_cast<int>(ep), std::memory_order_release);
  rtfd_add(static_cast<int>(ep), RtfdKind::kOwned);
  rtfd_add(static_cast<int>(bf), RtfdKind::kOwned);
  return true;
}

// The instance is made by the first fd wait, not at start-up: a process
// that never waits for an fd never has it (docs/ARCHITECTURE.md,
// "Start-up"). One try; after a failure fds hand their P off.
constinit std::atomic<bool> g_opened{false};

bool ensure_instance() {
  if (MNP_UNLIKELY(!g_opened.load(std::memory_order_acquire))) {
    LockGuard lk(g_fd_lock);
    if (!g_opened.load(std::memory_order_relaxed)) {
      if (!open_instance()) raw_print("warning: cannot start the netpoller; blocking fds hand their P off instead");
      g_opened.store(true, std::memory_order_release);
    }
  }
  return g_epfd.load(std::memory_order_relaxed) >= 0;
}

}  // namespace

MNP_STARTUP void netpoll_after_fork() {
  g_chunk_lock.reset_in_child();
  for (int k = 0, end = g_chunks_end.load(std::memory_order_relaxed); k < end; k++) {
    FdState* c = g_chunks[k].load(std::memory_order_relaxed);
    if (!c) continue;
    for (int i = 0; i < kChunk; i++) {
      new (&c[i].lock) Lock();
      c[i].head = nullptr;
    }
  }
  g_waiters.store(0, std::memory_order_relaxed);
  g_poller.store(0, std::memory_order_relaxed);
  g_poll_until.store(0, std::memory_order_relaxed);
  g_break_pending.store(0, std::memory_order_relaxed);
  g_fd_lock.reset_in_child();
  // The parent's instance is shared with it: the child makes its own at its
  // first fd wait.
  g_opened.store(false, std::memory_order_relaxed);
  int ep = g_epfd.load(std::memory_order_relaxed);
  if (ep >= 0) {
    rtfd_remove(ep);
    raw_syscall(SYS_close, ep);
    g_epfd.store(-1, std::memory_order_relaxed);
  }
  if (g_breakfd >= 0) {
    rtfd_remove(g_breakfd);
    raw_syscall(SYS_close, g_breakfd);
    __atomic_store_n(&g_breakfd, -1, __ATOMIC_RELEASE);
  }
}

std::atomic<uint32_t>* netpoll_seq(int fd, PollDir dir) {
  FdState* s = state(fd);
  if (!s) return nullptr;
  return dir == PollDir::kRead ? &s->rseq : &s->wseq;
}

bool netpoll_sample(PollWant* w, int n) {
  for (int i = 0; i < n; i++) {
    if (w[i].fd < 0) continue;  // dropped by netpoll_wait_any
    FdState* s = state(w[i].fd);
    if (!s) return false;
    w[i].rseen = s->rseq.load(std::memory_order_acquire);
    w[i].wseen = s->wseq.load(std::memory_order_acquire);
  }
  return true;
}

int netpoll_wait_any(PollWant* want, int n, int64_t deadline, Intr intr, uint64_t blocked, const CallMask* call) {
  if (deadline != kNever && deadline <= nanotime()) return ETIMEDOUT;
  if (!ensure_instance()) return EPERM;
  G* g = get_user_g();
  constexpr int kInline = 4;
  Entry inline_entries[kInline];
  Entry* ents = inline_entries;
  if (n > kInline) {
    ents = static_cast<Entry*>(malloc(sizeof(Entry) * static_cast<size_t>(n)));
    if (!ents) return EPERM;
  }
  // A P before the wait is published (sched.h, ensure_p): from then on a
  // waker may ready this G, which must not be queued meanwhile.
  if (g) ensure_p(g);
  if (blocked == kBlockedByG) blocked = g ? sigset_bits(&g->sigmask) : 0;
  Wait w{g, intr, blocked, call};
  arm_cancel(&w);
  int linked = 0, result = 0;
  bool moved = false;
  for (int i = 0; i < n && !moved; i++) {
    if (want[i].fd < 0) continue;
    FdState* s = state(want[i].fd);
    int reg = s ? register_fd(want[i].fd) : EPERM;
    if (reg == EPERM) {
      result = EPERM;
      break;
    }
    if (reg == EBADF) {
      // Not open: look again at once (a read then reports EBADF, a poll
      // POLLNVAL), and leave the fd out of the caller's next waits — select
      // ignores bits past the kernel's fd table, and waiting for them
      // would spin.
      want[i].fd = -1;
      moved = true;
      break;
    }
    Entry* e = new (&ents[linked]) Entry;
    e->w = &w;
    e->dirs = want[i].dirs;
    e->on.store(nullptr, std::memory_order_relaxed);
    s->lock.lock();
    moved = ((want[i].dirs & kPollRead) && s->rseq.load(std::memory_order_acquire) != want[i].rseen) ||
            ((want[i].dirs & kPollWrite) && s->wseq.load(std::memory_order_acquire) != want[i].wseen);
    if (!moved) link_locked(s, e);
    s->lock.unlock();
    if (!moved) linked++;
  }
  // A moved fd or an error: claim the wait ourselves so nobody readies us.
  if (moved || result == EPERM) decide(&w, kWoken);
  Timer t;
  bool timed = false;
  if (w.state.load(std::memory_order_acquire) == kArming) {
    g_waiters.fetch_add(1, std::memory_order_seq_cst);
    if (deadline != kNever) {
      t.when = deadline;
      t.fn = wait_timeout;
      t.arg = &w;
      timer_add(&t);
      timed = true;
    }
    // No M is the poller but a P is idle: start an M there; finding nothing
    // to run, it becomes the poller (otherwise the fd would wait for a busy
    // P to run out of work, or for sysmon). Not for the process's only G:
    // its own M runs out of work as it parks and polls; unless the G is
    // wired, whose M sleeps as it parks (stoplockedm) and hands its P on
    // without an M when another P is idle (handoffp).
    if (g_poller.load(std::memory_order_seq_cst) == 0 && sched.npidle.load(std::memory_order_seq_cst) > 0 &&
        (sched.ngsys_live.load(std::memory_order_relaxed) > 1 || g->lockedm != nullptr))
      wakep();
    park(kWaitNet, park_commit, &w);
    if (timed) timer_del(&t);
    g_waiters.fetch_sub(1, std::memory_order_relaxed);
  }
  for (int i = 0; i < linked; i++) {
    Entry* e = &ents[i];
    FdState* s = e->on.load(std::memory_order_acquire);
    if (!s) continue;
    s->lock.lock();
    if (e->on.load(std::memory_order_relaxed)) unlink_locked(s, e);
    s->lock.unlock();
  }
  if (ents != inline_entries) free(ents);
  if (g) cancel_disarm(g);
  // Woken for a pending handler before it even parked (park() runs them
  // otherwise): run it before the EINTR it caused is seen.
  if (MNP_UNLIKELY(sigpend_any())) sigpend_run(nullptr, nullptr);
  uint32_t st = w.state.load(std::memory_order_acquire);
  // Woken with EINTR to run a pending handler (G::sig_eintr) that did not
  // run here: another G took the slot first, or this G already took it
  // before this wait began (sysmon read the slot, then woke whatever wait
  // the G was in by then). Natively no handler ran for this call: it goes
  // on (a masked call's commit still ends it if one ran meanwhile).
  if (st == kInterrupted && g && g->sig_eintr.exchange(0, std::memory_order_acq_rel) != 0) st = kWoken;
  if (st == kCanceled) return ECANCELED;
  if (result == EPERM) return EPERM;
  return st == kTimedOut ? ETIMEDOUT : st == kInterrupted ? EINTR : 0;
}

int netpoll_sleep(int64_t deadline, uint64_t blocked, const CallMask* call) {
  G* g = get_user_g();
  if (g) ensure_p(g);  // before the timer can ready it (sched.h)
  if (blocked == kBlockedByG) blocked = g ? sigset_bits(&g->sigmask) : 0;
  Wait w{g, Intr::kPoll, blocked, call};  // a sleep ends early for any handler, SA_RESTART or not
  arm_cancel(&w);
  Timer t;
  bool timed = deadline != kNever;
  if (timed) {
    t.when = deadline;
    t.fn = wait_timeout;
    t.arg = &w;
    timer_add(&t);
  }
  g->sleep_wait.store(&w, std::memory_order_release);
  park(kWaitSleep, park_commit, &w);
  if (timed) timer_del(&t);
  g->sleep_wait.store(nullptr, std::memory_order_seq_cst);
  while (g->sleep_intr_busy.load(std::memory_order_seq_cst)) cpu_relax();
  cancel_disarm(g);
  if (MNP_UNLIKELY(sigpend_any())) sigpend_run(nullptr, nullptr);
  uint32_t st = w.state.load(std::memory_order_acquire);
  return st == kInterrupted ? EINTR : st == kCanceled ? ECANCELED : 0;
}

int netpoll_wait(int fd, PollDir dir, uint32_t seen, int64_t deadline) {
  PollWant w{fd, dir == PollDir::kRead ? kPollRead : kPollWrite, seen, seen};
  return netpoll_wait_any(&w, 1, deadline);
}

void netpoll_close(int fd) {
  FdState* s = state_if_any(fd);
  if (!s) return;
  s->known.store(0, std::memory_order_relaxed);
  bump_and_wake(s, kPollRead | kPollWrite);
}

void netpoll_close_range(unsigned first, unsigned last) {
  int end = g_chunks_end.load(std::memory_order_acquire);
  for (int k = static_cast<int>(first >> kChunkBits); k < end && k <= static_cast<int>(last >> kChunkBits); k++) {
    FdState* c = g_chunks[k].load(std::memory_order_acquire);
    if (!c) continue;
    for (int i = 0; i < kChunk; i++) {
      unsigned fd = (static_cast<unsigned>(k) << kChunkBits) + static_cast<unsigned>(i);
      if (fd < first || fd > last) continue;
      c[i].known.store(0, std::memory_order_relaxed);
      if (__atomic_load_n(&c[i].head, __ATOMIC_RELAXED)) bump_and_wake(&c[i], kPollRead | kPollWrite);
    }
  }
}

bool netpoll_fd_is_file(int fd) {
  FdState* s = state(fd);
  if (s && (s->known.load(std::memory_order_relaxed) & kKnownNotFile)) return false;
  struct stat st;
  if (raw_syscall(SYS_fstat, fd, reinterpret_cast<long>(&st)) != 0) return false;
  bool file = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  if (!file && s) s->known.fetch_or(kKnownNotFile, std::memory_order_relaxed);
  return file;
}

bool netpoll_fd_refuses_nowait(int fd, PollDir dir) {
  FdState* s = state_if_any(fd);
  uint8_t bit = dir == PollDir::kRead ? kKnownNoNowaitRead : kKnownNoNowaitWrite;
  return s && (s->known.load(std::memory_order_relaxed) & bit);
}

bool netpoll_fd_read_shut(int fd) {
  FdState* s = state_if_any(fd);
  if (!s || !(s->known.load(std::memory_order_relaxed) & kKnownRdHup)) return false;
  struct pollfd p = {fd, POLLRDHUP, 0};
  if (raw_syscall(SYS_poll, reinterpret_cast<long>(&p), 1, 0) == 1 && (p.revents & POLLRDHUP)) return true;
  s->known.fetch_and(static_cast<uint8_t>(~kKnownRdHup), std::memory_order_relaxed);
  return false;
}

void netpoll_fd_note_refuses_nowait(int fd, PollDir dir) {
  if (FdState* s = state(fd))
    s->known.fetch_or(dir == PollDir::kRead ? kKnownNoNowaitRead : kKnownNoNowaitWrite, std::memory_order_relaxed);
}

void netpoll_signal_arrived(int sig, bool restart) {
  if (sig < 1 || sig >= kNsig) return;
  (restart ? g_sig_restart : g_sig_norestart)[sig].fetch_add(1, std::memory_order_release);
  g_sig_any.store(1, std::memory_order_release);
  // Wake whoever sleeps: the poller (through the eventfd; a plain write is
  // async-signal-safe, and the lock that orders moves of the eventfd cannot
  // be taken here) and sysmon.
  uint64_t one = 1;
  int bf = __atomic_load_n(&g_breakfd, __ATOMIC_ACQUIRE);
  if (bf >= 0 && g_poller.load(std::memory_order_relaxed) != 0)
    raw_syscall(SYS_write, bf, reinterpret_cast<long>(&one), sizeof one);
  sysmon_wake_from_signal();
}

namespace {

// Interrupts g's sleep if it is in one the signal may end. Returns true if
// it decided the sleep (then *woken is g if g must be readied).
template <typename Eligible>
bool interrupt_sleep(G* g, Eligible& eligible, G** woken) {
  // Flag first, then look (seq_cst both): the sleeper clears its record
  // first, then waits for the flag, so the record is either seen gone or
  // kept alive until the flag drops.
  LockGuard lk(g_sleep_lock);
  g->sleep_intr_busy.store(1, std::memory_order_seq_cst);
  bool hit = false;
  auto* w = static_cast<Wait*>(g->sleep_wait.load(std::memory_order_seq_cst));
  if (w && eligible(w)) {
    uint32_t was = decide(w, kInterrupted);
    hit = was == kArming || was == kParked;
    if (was == kParked) *woken = w->g;
  }
  g->sleep_intr_busy.store(0, std::memory_order_release);
  return hit;
}

// One scan for both uses of a signal's effect on a parked G: wakes a
// netpoller wait or sleep of `only` (any G when null) that does not block
// sig. After a handler that ran elsewhere (for_handler false) only a wait
// the signal ends natively qualifies, and it ends with EINTR. To make a G run
// a pending handler (for_handler), any wait qualifies: with EINTR (and
// G::sig_eintr set, so the handler's run does not count the signal again)
// where the signal ends it natively and may_interrupt, else as a plain
// wake-up that retries the call; sleeps only with may_interrupt. Without
// `only`, a sleeping G, any, comes last. Signals are rare: a scan of every
// fd state is fine. Returns false if no wait qualified.
bool wake_one_wait(int sig, bool restart, G* only, bool for_handler, bool may_interrupt) {
  auto ends_natively = [&](const Wait* w) { return w->intr == Intr::kPoll || !restart; };
  auto eligible = [&](const Wait* w) {
    return !((w->blocked >> (sig - 1)) & 1) && (!only || w->g == only) && (for_handler || ends_natively(w));
  };
  // A sleep (nanosleep and friends): any handler ends it with EINTR.
  auto try_sleep = [&](G* g) {
    if (!may_interrupt || !g->sleep_wait.load(std::memory_order_acquire)) return false;
    G* woken = nullptr;
    if (for_handler) g->sig_eintr.store(sig, std::memory_order_release);
    bool hit = interrupt_sleep(g, eligible, &woken);
    if (!hit && for_handler) g->sig_eintr.store(0, std::memory_order_relaxed);
    // Readied outside the locks: the G cannot wake otherwise (the timer
    // lost the decision), so its frame stays put until then.
    if (woken) ready(woken, true);
    return hit;
  };
  if (only && try_sleep(only)) return true;
  for (int k = 0, end = g_chunks_end.load(std::memory_order_acquire); k < end; k++) {
    FdState* c = g_chunks[k].load(std::memory_order_acquire);
    if (!c) continue;
    for (int i = 0; i < kChunk; i++) {
      FdState* s = &c[i];
      if (!__atomic_load_n(&s->head, __ATOMIC_RELAXED)) continue;
      s->lock.lock();
      for (Entry* e = s->head; e; e = e->next) {
        if (!eligible(e->w)) continue;
        // Otherwise the call is restarted, which a plain wake-up amounts to.
        bool intr = may_interrupt && ends_natively(e->w);
        G* g = e->w->g;
        bool mark = intr && for_handler;
        if (mark) g->sig_eintr.store(sig, std::memory_order_release);
        uint32_t was = decide(e->w, intr ? kInterrupted : kWoken);
        if (was != kArming && was != kParked) {  // already decided
          if (mark) g->sig_eintr.store(0, std::memory_order_relaxed);
          continue;
        }
        unlink_locked(s, e);
        s->lock.unlock();
        if (was == kParked) ready(g, true);
        return true;
      }
      s->lock.unlock();
    }
  }
  if (only) return false;
  bool hit = false;
  gmem_for_each_tcb([&](void* tcb) {
    if (!hit) hit = try_sleep(reinterpret_cast<G*>(static_cast<char*>(tcb) + tcbo::kSize));
  });
  return hit;
}

// Interrupts the wait a process-directed signal interrupts natively, after
// its handler ran on some G. The kernel gives it to the main thread unless
// that thread has gone, so: the main G if it waits in the netpoller or in
// an interruptible sema wait (sema_interrupt: semaphore, futex); else,
// once the main G has exited (pthread_exit from main), any G that waits. A
// main G that is running or joining takes the signal without an EINTR
// visible anywhere, as natively; a sleeping one wakes with EINTR. (A signal
// sent to one G never comes here: core/sigpend.h.)
bool interrupt_one(int sig, bool restart) {
  G* mg = g_sig_main.load(std::memory_order_acquire);
  if (!mg) mg = main_g();
  bool main_gone = mg->status.load(std::memory_order_acquire) == kGDead || mg->wait_reason == kWaitForever;
  return wake_one_wait(sig, restart, main_gone ? nullptr : mg, false, true) ||
         sema_interrupt(main_gone ? nullptr : mg, sig, restart);
}

}  // namespace

G* netpoll_signal_main() {
  G* mg = g_sig_main.load(std::memory_order_acquire);
  return mg ? mg : main_g();
}

bool netpoll_wake_for_handler(int sig, bool restart, G* only, bool may_interrupt) {
  return wake_one_wait(sig, restart, only, true, may_interrupt);
}

void netpoll_deliver_signals() {
  if (g_sig_any.load(std::memory_order_acquire) == 0) return;
  g_sig_any.store(0, std::memory_order_relaxed);
  for (int sig = 1; sig < kNsig; sig++) {
    for (int restart = 0; restart < 2; restart++) {
      uint32_t n = (restart ? g_sig_restart : g_sig_norestart)[sig].exchange(0, std::memory_order_acq_rel);
      for (; n > 0; n--) {
        interrupt_one(sig, restart);
      }
    }
  }
}

MNP_STARTUP void netpoll_signal_fork_child(G* self) {
  self->sleep_intr_busy.store(0, std::memory_order_relaxed);  // an interrupter may have been mid-way
  self->sleep_wait.store(nullptr, std::memory_order_relaxed);
  g_sig_main.store(self, std::memory_order_relaxed);
  g_sig_any.store(0, std::memory_order_relaxed);
  for (int i = 0; i < kNsig; i++) {
    g_sig_norestart[i].store(0, std::memory_order_relaxed);
    g_sig_restart[i].store(0, std::memory_order_relaxed);
  }
  g_sleep_lock.reset_in_child();
}

int netpoll_dispatch(const struct epoll_event* ev, int n) {
  int woken = 0;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 > INT32_MAX) continue;
    FdState* s = state_if_any(static_cast<int>(ev[i].data.u64));
    if (!s) continue;
    uint32_t e = ev[i].events, dirs = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) dirs |= kPollRead;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) dirs |= kPollWrite;
    if (MNP_UNLIKELY(e & EPOLLRDHUP) && !(s->known.load(std::memory_order_relaxed) & kKnownRdHup))
      s->known.fetch_or(kKnownRdHup, std::memory_order_relaxed);
    woken += bump_and_wake(s, dirs);
  }
  return woken;
}

bool netpoll_worth_polling() {
  return g_waiters.load(std::memory_order_seq_cst) > 0 && g_poller.load(std::memory_order_seq_cst) == 0;
}

int netpoll_poll_now() {
  int ep = g_epfd.load(std::memory_order_relaxed);
  if (ep < 0 || g_waiters.load(std::memory_order_relaxed) == 0) return 0;
  struct epoll_event ev[64];
  long n = raw_syscall6(SYS_epoll_wait, ep, reinterpret_cast<long>(ev), 64, 0, 0, 0);
  g_last_poll.store(nanotime(), std::memory_order_relaxed);
  if (n <= 0) return 0;
  return netpoll_dispatch(ev, drop_break(ev, static_cast<int>(n), false));
}

int netpoll_block(struct epoll_event* ev, int max, int64_t until_given) {
  int ep = g_epfd.load(std::memory_order_relaxed);
  if (ep < 0 || g_waiters.load(std::memory_order_seq_cst) == 0) return -1;
  if (g_breakfd < 0) return -1;  // nobody could interrupt it for a timer
  uint32_t zero = 0;
  if (!g_poller.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return -1;
  g_poll_until.store(0, std::memory_order_seq_cst);
  // Claim first, then read the timers: a timer added after this read sees
  // the claim and interrupts us (netpoll_timer_added).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  int64_t until = until_given != kNever ? until_given : timers_earliest();
  g_poll_until.store(until, std::memory_order_seq_cst);
  long n;
  if (until == kNever) {
    n = raw_syscall6(SYS_epoll_wait, ep, reinterpret_cast<long>(ev), max, -1, 0, 0);
  } else {
    int64_t left = until - nanotime();
    if (left < 0) left = 0;
    n = -ENOSYS;
    if (g_have_pwait2.load(std::memory_order_relaxed)) {
      struct timespec ts = {static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      n = raw_syscall6(SYS_epoll_pwait2, ep, reinterpret_cast<long>(ev), max, reinterpret_cast<long>(&ts), 0, 0);
      if (n == -ENOSYS) g_have_pwait2.store(false, std::memory_order_relaxed);
    }
    if (n == -ENOSYS) {  // before Linux 5.11: milliseconds, rounded up
      n = raw_syscall6(SYS_epoll_wait, ep, reinterpret_cast<long>(ev), max,
                       static_cast<long>((left + 999999) / 1000000), 0, 0);
    }
  }
  if (n < 0) n = 0;  // EINTR: a signal for this thread; the caller looks again
  n = drop_break(ev, static_cast<int>(n), true);
  g_last_poll.store(nanotime(), std::memory_order_relaxed);
  g_poll_until.store(0, std::memory_order_relaxed);
  g_poller.store(0, std::memory_order_seq_cst);
  netpoll_deliver_signals();
  return static_cast<int>(n);
}

void netpoll_timer_added(int64_t when) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (g_poller.load(std::memory_order_seq_cst) == 0) return;
  int64_t until = g_poll_until.load(std::memory_order_seq_cst);
  if (until != 0 && until <= when) return;
  if (g_break_pending.exchange(1, std::memory_order_acq_rel) != 0) return;
  uint64_t one = 1;
  LockGuard lk(g_fd_lock);
  if (g_breakfd >= 0) raw_syscall(SYS_write, g_breakfd, reinterpret_cast<long>(&one), sizeof one);
}

int64_t netpoll_last_poll() { return g_last_poll.load(std::memory_order_relaxed); }

// The program is about to dup2 onto fd, one of ours: carry on with a copy.
// A poll racing with the move may use the old number once and see an error
// (treated as a spurious wake-up, or EPERM: the caller hands off instead).
void netpoll_relocate(int fd) {
  LockGuard lk(g_fd_lock);
  bool ep = fd == g_epfd.load(std::memory_order_relaxed);
  if (!ep && fd != g_breakfd) return;
  long nfd = rtfd_dup_high(fd);
  if (nfd < 0) {
    // Every number is taken (RLIMIT_NOFILE): give the fd up. Without the
    // epoll instance fds are waited for with the P handed off; without the
    // eventfd no M sleeps in epoll_wait (Ms harvest as they pass, sysmon
    // every 10 ms).
    raw_print(ep ? "the program takes every fd number: the netpoller is off, fd waits block their M"
                 : "the program takes every fd number: no M sleeps in the netpoller any more");
    nfd = -1;
  } else {
    rtfd_add(static_cast<int>(nfd), RtfdKind::kOwned);
  }
  if (ep) g_epfd.store(static_cast<int>(nfd), std::memory_order_release);
  else __atomic_store_n(&g_breakfd, static_cast<int>(nfd), __ATOMIC_RELEASE);
  rtfd_remove(fd);
}

int netpoll_waiters() { return g_waiters.load(std::memory_order_relaxed); }

}  // namespace mnp
