// core/sema.cpp — see sema.h.
#include "core/sema.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <new>

#include "core/base.h"
#include "core/cancel.h"
#include "core/futex.h"
#include "core/sched.h"
#include "core/sema_c.h"

namespace mnp {
namespace {

enum : uint32_t { kWaiting, kWoken, kTimedOut, kCanceled, kSignaled, kInterrupted };
// Waiter::park. The waiter is on its bucket's list from kArming on; the
// bucket lock is not held across the switch, whose FS base write is a
// system call on a CPU without FSGSBASE (2.9 us): a waker that wanted the
// lock meanwhile (the unlocking thread of a contended mutex) slept on it in
// the kernel. Whoever ends the wait takes it (kClaimed); the G's park
// commit moves kArming to kParked. The one that moves second decides: a
// claim that finds kParked readies the G, a commit that finds kClaimed
// fails and the G goes on at once with its outcome.
enum : uint32_t { kArming, kParked, kClaimed };

struct Waiter {
  const void* addr;
  G* g;
  uint32_t bitset;
  uint32_t state;  // bucket lock
  bool timed;
  bool interruptible;
  bool sig_may_intr;  // kSignaled by the G the kernel would have chosen (bucket lock)
  Waiter* next;
  Waiter* prev;
  struct Bucket* bucket;                // bucket it is on (changes on requeue; bucket lock)
  CancelWait cw;                        // published while a cancelable wait may sleep
  const std::atomic<uint32_t>* watch;   // watched word (sema_watch_scan), or null
  uint32_t watch_val;                   // its value when the wait began
  std::atomic<uint32_t> park{kArming};  // see claim_locked
};

struct alignas(64) Bucket {
  Lock lock;
  Waiter* head = nullptr;
  Waiter* tail = nullptr;
  uint32_t kernel_waiters = 0;  // non-G sleepers in the kernel futex (lock)
  // A requeue in the kernel may have moved such sleepers onto a word of this
  // bucket, where kernel_waiters does not count them (they count in the
  // bucket they began on). Set before that requeue, never cleared.
  std::atomic<bool> requeued_in{false};
};

// Threads that are not Gs asleep in the kernel futex, all words together.
constinit std::atomic<uint32_t> g_kernel_waiters{0};

// Watched waiters parked now (sema_wait's `watch`), for sysmon.
constinit std::atomic<int32_t> g_watched{0};

constexpr uint32_t kBuckets = 251;
MNP_COLD_BSS constinit Bucket g_buckets[kBuckets];

// Set when a bucket is first used: a fork child of a process that never
// waited has no bucket to reset (sema_after_fork), and need not fault in
// their 16 KiB to find that out.
MNP_START_DATA constinit std::atomic<bool> g_buckets_used{false};

Bucket* bucket_of(const void* addr) {
  if (MNP_UNLIKELY(!g_buckets_used.load(std::memory_order_relaxed)))
    g_buckets_used.store(true, std::memory_order_relaxed);
  return &g_buckets[(reinterpret_cast<uintptr_t>(addr) >> 2) % kBuckets];
}

void push_locked(Bucket* b, Waiter* w) {
  w->bucket = b;
  w->next = nullptr;
  w->prev = b->tail;
  if (b->tail) b->tail->next = w;
  else b->head = w;
  b->tail = w;
}

// After the outcome of w was written (its bucket locked): true if its G has
// parked, and the caller readies it once the lock is released; false if it
// is still on its way into park(), whose commit then fails. Either way w
// belongs to its G again as soon as the lock is released.
bool claim_locked(Waiter* w) { return w->park.exchange(kClaimed, std::memory_order_acq_rel) == kParked; }

bool commit_waiter(G*, void* arg) {
  uint32_t a = kArming;
  return static_cast<Waiter*>(arg)->park.compare_exchange_strong(a, kParked, std::memory_order_acq_rel);
}

void unlink_locked(Bucket* b, Waiter* w) {
  if (w->prev) w->prev->next = w->next;
  else b->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else b->tail = w->prev;
  w->next = w->prev = nullptr;
}

// Withdraws the waiter with outcome `to` unless a waker got it first; returns
// its G to ready when this call did, else null.
G* withdraw(Waiter* w, uint32_t to) {
  for (;;) {
    Bucket* b = __atomic_load_n(&w->bucket, __ATOMIC_ACQUIRE);
    b->lock.lock();
    if (w->bucket != b) {  // requeued meanwhile: lock the new bucket
      b->lock.unlock();
      continue;
    }
    bool fire = w->state == kWaiting;
    G* g = w->g;
    if (fire) {
      unlink_locked(b, w);
      w->state = to;
      fire = claim_locked(w);
    }
    b->lock.unlock();
    return fire ? g : nullptr;
  }
}

// Timer of a timed wait.
G* wait_timeout(Timer* t) { return withdraw(static_cast<Waiter*>(t->arg), kTimedOut); }

// pthread_cancel of the waiting G.
void wait_cancel(CancelWait* cw) {
  if (G* g = withdraw(reinterpret_cast<Waiter*>(reinterpret_cast<char*>(cw) - offsetof(Waiter, cw)), kCanceled)) {
    g->woke_by_timer.store(true, std::memory_order_relaxed);
    ready(g, true);
  }
}

int kernel_wait(Bucket* b, const std::atomic<uint32_t>* addr, uint32_t val, int64_t deadline, uint32_t bitset,
                bool interruptible) {
  b->kernel_waiters++;
  g_kernel_waiters.fetch_add(1, std::memory_order_seq_cst);
  b->lock.unlock();
  long r;
  if (deadline == kNever) {
    r = raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAIT_BITSET_PRIVATE, val, 0, 0, bitset);
  } else {
    struct timespec ts = {static_cast<time_t>(deadline / 1000000000), static_cast<long>(deadline % 1000000000)};
    r = raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAIT_BITSET_PRIVATE, val,
                     reinterpret_cast<long>(&ts), 0, bitset);
  }
  b->lock.lock();
  b->kernel_waiters--;
  g_kernel_waiters.fetch_sub(1, std::memory_order_relaxed);
  b->lock.unlock();
  if (r == -EAGAIN) return EAGAIN;
  if (r == -ETIMEDOUT) return ETIMEDOUT;
  // The kernel applied its own rule (restarted the call or not).
  if (r == -EINTR && interruptible) return EINTR;
  return 0;  // woken, or EINTR: a spurious wake-up, as futex(2) allows
}

// Ends a parked waiter for a signal (bucket lock held; unlocked here).
void signal_locked(Bucket* b, Waiter* w, uint32_t to) {
  unlink_locked(b, w);
  w->state = to;
  G* g = w->g;
  bool parked = claim_locked(w);
  b->lock.unlock();
  if (parked) ready(g, true);
}

}  // namespace

namespace {
// One wait. Woken kSignaled: -1 when this G is the one the kernel would
// have given the signal to, else -2.
int sema_wait_once(G* g, const std::atomic<uint32_t>* addr, uint32_t val, int64_t deadline, uint32_t bitset,
                   const SemaWait& how) {
  const bool cancelable = how.cancelable, interruptible = how.interruptible, watch = how.watch;
  // A P first, then the bucket lock: taking the P back may queue this G
  // (futex.h, Lock), which must not happen while it holds the lock.
  if (g) ensure_p(g);
  Bucket* b = bucket_of(addr);
  b->lock.lock();
  if (addr->load(std::memory_order_acquire) != val) {
    b->lock.unlock();
    return EAGAIN;
  }
  if (!g) return kernel_wait(b, addr, val, deadline, bitset, interruptible);
  // The process's only G on its only M (sched.h, wait_direct): the kernel's
  // wait, as for a thread that is no G, in syscall state (a G a handler
  // makes meanwhile gets the P from sysmon). Parked, the wait started sysmon
  // and an M, and a single-threaded process had three kernel threads
  // (interpose/time.cpp, direct_sleep, says who minds). Not a watched wait
  // (a futex through syscall()): another process may wake it with a shared
  // wake, which only the watch sees. Nor a cancellation point (a condvar or
  // semaphore wait): a pthread_cancel meanwhile must end it, which only the
  // parked wait's record lets it do.
  if (!watch && !cancelable && wait_direct(g))
    return direct_call(g, [&] {
      entersyscall();
      int r = kernel_wait(b, addr, val, deadline, bitset, interruptible);
      exitsyscall();
      return r;
    });
  if (deadline != kNever && deadline <= nanotime()) {
    b->lock.unlock();
    return ETIMEDOUT;
  }
  Waiter w{addr,  g,       bitset,  kWaiting, deadline != kNever, interruptible,
           false, nullptr, nullptr, nullptr,  {wait_cancel},      watch ? addr : nullptr,
           val};
  if (watch) g_watched.fetch_add(1, std::memory_order_relaxed);
  push_locked(b, &w);
  // Published with the waiter on the list (under the bucket lock), so the
  // canceller's withdraw finds it there.
  if (cancelable && cancel_arm(g, &w.cw)) {
    // Decided here: the canceller, which may already have read w.cw, then
    // finds the waiter no longer kWaiting and leaves the list alone.
    w.state = kCanceled;
    unlink_locked(b, &w);
    b->lock.unlock();
    cancel_disarm(g);
    return ECANCELED;
  }
  Timer t;
  if (deadline != kNever) {
    t.when = deadline;
    t.fn = wait_timeout;
    t.arg = &w;
    timer_add(&t);
  }
  // A waker that finds us before the park commits claims the waiter and
  // the commit fails (kArming above). The bucket is released by park once
  // it holds the M: a handler of the program's that ran in between could
  // wait, cancel or long-jump with this record still armed.
  g->sig_ran = 0;
  park(how.reason, commit_waiter, &w, &b->lock);
  if (deadline != kNever) timer_del(&t);
  if (watch) g_watched.fetch_sub(1, std::memory_order_relaxed);
  if (cancelable) cancel_disarm(g);
  // Wakers, the timer and the canceller set the state under the bucket lock
  // before they claim the waiter; reading it here without the lock is
  // ordered by the claim and the commit (and by ready/park).
  switch (w.state) {
    case kTimedOut:
      return ETIMEDOUT;
    case kCanceled:
      return ECANCELED;
    case kInterrupted:
      return EINTR;
    case kSignaled:
      // The waker's mark is spent once park() ran the handlers; a handler
      // another G took first leaves it behind.
      if (w.sig_may_intr) g->sig_eintr.store(0, std::memory_order_relaxed);
      return w.sig_may_intr ? -1 : -2;
    default:
      return 0;
  }
}
}  // namespace

int sema_wait(const std::atomic<uint32_t>* addr, uint32_t val, int64_t deadline, uint32_t bitset, SemaWait how) {
  G* g = running_user_g();
  for (;;) {
    int r = sema_wait_once(g, addr, val, deadline, bitset, how);
    if (r >= 0) return r;
    // kSignaled: park() ran the handlers. EINTR where the kernel gives it
    // (sema.h), else the wait is restarted.
    uint8_t ran = g->sig_ran;
    g->sig_ran = 0;
    if (r == -1 && how.interruptible && (ran & kSigRan) && (deadline != kNever || (ran & kSigRanNoRestart)))
      return EINTR;
  }
}

bool sema_watching() { return g_watched.load(std::memory_order_relaxed) > 0; }

void sema_watch_scan() {
  if (!sema_watching()) return;
  for (Bucket& b : g_buckets) {
    if (!__atomic_load_n(&b.head, __ATOMIC_RELAXED)) continue;
    b.lock.lock();
    for (Waiter* w = b.head; w;) {
      Waiter* next = w->next;
      // Requeued waiters (addr moved on) are no longer watched: their old
      // word says nothing about the new one.
      if (w->state == kWaiting && w->watch && w->addr == w->watch &&
          w->watch->load(std::memory_order_acquire) != w->watch_val) {
        unlink_locked(&b, w);
        w->state = kWoken;  // a spurious wake-up for the futex caller
        G* g = w->g;
        if (claim_locked(w)) {
          b.lock.unlock();
          ready(g, true);
          b.lock.lock();
          next = b.head;  // the list may have changed meanwhile: start over
        }
      }
      w = next;
    }
    b.lock.unlock();
  }
}

bool sema_wake_for_signal(G* only, int sig, bool may_interrupt) {
  for (Bucket& b : g_buckets) {
    if (!__atomic_load_n(&b.head, __ATOMIC_RELAXED)) continue;
    b.lock.lock();
    for (Waiter* w = b.head; w; w = w->next) {
      if (w->state != kWaiting || (only && w->g != only) || (!only && g_blocks(w->g, sig))) continue;
      w->sig_may_intr = may_interrupt;
      if (may_interrupt) w->g->sig_eintr.store(sig, std::memory_order_release);
      signal_locked(&b, w, kSignaled);
      return true;
    }
    b.lock.unlock();
  }
  return false;
}

bool sema_interrupt(G* only, int sig, bool restart) {
  for (Bucket& b : g_buckets) {
    if (!__atomic_load_n(&b.head, __ATOMIC_RELAXED)) continue;
    b.lock.lock();
    for (Waiter* w = b.head; w; w = w->next) {
      if (w->state != kWaiting || !w->interruptible || (restart && !w->timed) || (only && w->g != only) ||
          g_blocks(w->g, sig))
        continue;
      signal_locked(&b, w, kInterrupted);
      return true;
    }
    b.lock.unlock();
  }
  return false;
}

int sema_wake(const void* addr, int n, uint32_t bitset) {
  if (n <= 0) return 0;
  // Sleepers in the kernel first: they are threads that are no G and need
  // no P to run (a G making sysmon, hidden meanwhile, and an ASan build's
  // M making an M: glibc's pthread_create calls the program's calloc;
  // glibc's helper threads; threads made before main or with a raw clone),
  // and a program allocator's
  // lock (Chromium's) waits through syscall(). Handed to a G first, the
  // wake-up went to a waiter that needed a P, while every P waited for the
  // M that such a thread was making: the process hung.
  // Only when this word's bucket has such sleepers, or a requeue in the
  // kernel may have moved some here (Bucket::requeued_in, never cleared:
  // such a bucket pays the system call while any kernel sleeper exists),
  // so that one long sleeper elsewhere (a thread made before main, waiting
  // on its condition variable) costs other words' wakes no system call.
  int first = 0;
  if (MNP_UNLIKELY(g_kernel_waiters.load(std::memory_order_seq_cst) != 0) &&
      (__atomic_load_n(&bucket_of(addr)->kernel_waiters, __ATOMIC_RELAXED) != 0 ||
       bucket_of(addr)->requeued_in.load(std::memory_order_seq_cst))) {
    long r = raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAKE_BITSET_PRIVATE, n, 0, 0, bitset);
    if (r > 0) {
      if (r >= n) return static_cast<int>(r);
      first = static_cast<int>(r);
      n -= first;
    }
  }
  Bucket* b = bucket_of(addr);
  bool kernel = false;  // kernel sleepers may be on this word (last batch's lock)
  int unparked = 0;     // woken on their way into park(): nobody to ready
  int total = ready_batched([&](G** woken, int before, bool* more) {
    int k = 0;
    b->lock.lock();
    for (Waiter* w = b->head; w;) {
      Waiter* next = w->next;
      if (w->addr == addr && (w->bitset & bitset)) {
        if (before + unparked + k >= n) break;
        if (k == kReadyBatch) {
          *more = true;
          break;
        }
        unlink_locked(b, w);
        w->state = kWoken;
        G* g = w->g;
        if (claim_locked(w)) woken[k++] = g;
        else unparked++;
      }
      w = next;
    }
    kernel = g_kernel_waiters.load(std::memory_order_seq_cst) != 0 &&
             (b->kernel_waiters != 0 || b->requeued_in.load(std::memory_order_seq_cst));
    b->lock.unlock();
    return k;
  });
  total += unparked;
  if (kernel && total < n) {
    long r = raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAKE_BITSET_PRIVATE, n - total, 0, 0, bitset);
    if (r > 0) total += static_cast<int>(r);
  }
  return first + total;
}

int sema_requeue(const std::atomic<uint32_t>* from, const void* to, int nwake, int nmove, const uint32_t* cmp,
                 bool count_moved) {
  Bucket* bf = bucket_of(from);
  Bucket* bt = bucket_of(to);
  Bucket* first = bf < bt ? bf : bt;
  Bucket* second = bf < bt ? bt : bf;
  first->lock.lock();
  if (second != first) second->lock.lock();
  if (cmp && from->load(std::memory_order_acquire) != *cmp) {
    if (second != first) second->lock.unlock();
    first->lock.unlock();
    return -EAGAIN;
  }
  constexpr int kBatch = 64;
  G* woken[kBatch];
  int k = 0, unparked = 0, moved = 0;
  // Onto the same word (legal for non-PI requeue): the kernel leaves those
  // waiters where they are but counts them as requeued; moving them to the
  // tail of the same list would meet them again, nmove times over.
  bool same = from == to;
  for (Waiter* w = bf->head; w;) {
    Waiter* next = w->next;
    if (w->addr == from) {
      if (k + unparked < nwake && k < kBatch) {
        unlink_locked(bf, w);
        w->state = kWoken;
        G* g = w->g;
        if (claim_locked(w)) woken[k++] = g;
        else unparked++;
      } else if (same && moved < nmove) {
        moved++;
      } else if (moved < nmove) {
        unlink_locked(bf, w);
        w->addr = to;
        push_locked(bt, w);
        moved++;
      } else {
        break;
      }
    }
    w = next;
  }
  uint32_t kernel = g_kernel_waiters.load(std::memory_order_seq_cst);
  if (second != first) second->lock.unlock();
  first->lock.unlock();
  for (int i = 0; i < k; i++) ready(woken[i], true);
  k += unparked;
  int total = k + (count_moved ? moved : 0);
  if (kernel && (k < nwake || moved < nmove)) {
    // Kernel sleepers on the same word: let the kernel do its share. Wakers
    // of `to` must look for the ones it moves there from now on.
    bt->requeued_in.store(true, std::memory_order_seq_cst);
    long r = raw_syscall6(SYS_futex, reinterpret_cast<long>(from), FUTEX_CMP_REQUEUE_PRIVATE, nwake - k, nmove - moved,
                          reinterpret_cast<long>(to), from->load());
    if (r > 0)
      total += count_moved ? static_cast<int>(r) : (static_cast<int>(r) < nwake - k ? static_cast<int>(r) : nwake - k);
  }
  return total;
}

MNP_STARTUP void sema_after_fork() {
  if (!g_buckets_used.load(std::memory_order_relaxed)) return;
  for (auto& b : g_buckets) {
    b.lock.reset_in_child();
    b.head = b.tail = nullptr;
    b.kernel_waiters = 0;
    b.requeued_in.store(false, std::memory_order_relaxed);
  }
  g_kernel_waiters.store(0, std::memory_order_relaxed);
  g_watched.store(0, std::memory_order_relaxed);
}

// The spin looks at the word only after waits that double from
// kFirstLookNs, at most kMaxLookWaitNs and clipped to the budget (looks at
// 0.25, 0.75, 1.75 and 3 us of a 3 us spin), reading the clock in between:
// every look at a word that a holder on another CPU keeps writing (its own
// lock and unlock in a loop) takes the cache line away from it. A look
// every pause slowed such a holder from 7 to 20-30 ns a lock, these waits
// give 8-13 ns (BM_MutexContention/threads:8 and :64 at 2 Ps, FSGSBASE
// machine, 2026-12-06; glibc 15-45 ns there). Time rather than pause
// counts: a pause takes 25 ns on one CPU and a few on another. The spin
// ends by the deadline too, and after kMaxLooks looks of at most
// kMaxPausesPerWait pauses each whatever the clock says (a clock made to
// stand still, libfaketime's, would hold it for good).
constexpr int64_t kFirstLookNs = 250;
constexpr int64_t kMaxLookWaitNs = 2000;
constexpr int kMaxLooks = 16;
constexpr int kMaxPausesPerWait = 1000;

int word_lock_slow(std::atomic<uint32_t>* w, int64_t spin_ns, int64_t deadline, WaitReason reason) {
  if (spin_ns > 0) {
    int64_t now = nanotime();
    const int64_t end = std::min(now + spin_ns, deadline);
    int64_t wait = kFirstLookNs;
    for (int looks = 0; looks < kMaxLooks && now < end; looks++) {
      const int64_t until = std::min(now + wait, end);
      for (int n = 0; n < kMaxPausesPerWait && (now = nanotime()) < until; n++) cpu_relax();
      uint32_t c = w->load(std::memory_order_relaxed);
      if (c == 0 && w->compare_exchange_strong(c, 1, std::memory_order_acquire)) return 0;
      wait = std::min(wait * 2, kMaxLookWaitNs);
    }
  }
  // Announce a waiter by moving to 2; whoever unlocks then wakes one. Each
  // time it finds the word taken again it waits again; the wait's start,
  // on the G, counts from the first (ready: the unlocker of a mutex that a
  // G has waited kStarveNs for gives that G the P).
  G* g = get_user_g();
  if (g) g->lock_wait_since = arch_cycles();
  int r = 0;
  while (w->exchange(2, std::memory_order_acquire) != 0) {
    if (sema_wait(w, 2, deadline, kBitsetAny, {.reason = reason}) == ETIMEDOUT) {
      r = ETIMEDOUT;
      break;
    }
  }
  if (g) g->lock_wait_since = 0;
  return r;
}

int sema_count(const void* addr) {
  Bucket* b = bucket_of(addr);
  LockGuard lk(b->lock);
  int n = 0;
  for (Waiter* w = b->head; w; w = w->next) n += w->addr == addr;
  return n;
}

}  // namespace mnp

// core/sema_c.h
extern "C" MNP_HIDDEN int mnp_sema_wait32(void* addr, uint32_t val) {
  return mnp::sema_wait(static_cast<std::atomic<uint32_t>*>(addr), val, mnp::kNever);
}
extern "C" MNP_HIDDEN int mnp_sema_wake_all(void* addr) { return mnp::sema_wake(addr, 0x7fffffff); }
