// interpose/mutex.cpp — pthread_mutex_* that park the G (docs/ARCHITECTURE.md,
// "Blocking calls": runtime waits).
//
// State lives in the program's pthread_mutex_t (see MutexView in sync.h), so
// static initialisers and zeroed memory work and nothing is allocated. The
// lock word is the classic three-state futex mutex (0 free, 1 locked, 2
// locked with waiters); waiting goes through the sema table, which parks Gs
// and sends other threads to the kernel futex on the same word. Types,
// recursion, error checks, robustness and timeouts follow glibc, errors
// included. Process-shared mutexes belong to several processes: they keep
// glibc's own implementation and block through the syscall hand-off; when a
// G exits holding a shared robust one, the exit hook marks it owner-died as
// the kernel would for a thread (release_glibc_robust_on_exit).
//
// Robust mutexes: the holder G links the mutex into its own list (the list
// field glibc uses for the kernel's robust list); when a G exits holding
// one, the owner becomes kOwnerDied and the lock is released, so the next
// locker gets EOWNERDEAD with the mutex held and inconsistent.
// PRIO_INHERIT has owner tracking and glibc's error behaviour, not kernel
// priority inheritance (a G has no kernel task to boost).
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>

#include <linux/futex.h>

#include "core/preempt.h"
#include "core/sched.h"
#include "core/sema.h"
#include "core/tcb.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

constexpr int kOwnerDied = 0x40000000;
constexpr int kInconsistent = INT_MAX;        // glibc's PTHREAD_MUTEX_INCONSISTENT
constexpr int kNotRecoverable = INT_MAX - 1;  // glibc's PTHREAD_MUTEX_NOTRECOVERABLE
constexpr int kDestroyed = -1;                // glibc marks a destroyed mutex's kind so

MutexView* view(pthread_mutex_t* m) { return reinterpret_cast<MutexView*>(m); }

// How long an ordinary mutex's locker spins before it parks (the spin
// itself: word_lock_slow, core/sema.cpp): about 3 us when the scheduler
// says spinning pays (lock_spin_pays, sched.h), else not at all; about Go's
// bound (4 x 30 pauses) on the CPU where a pause takes 25 ns. Spinning only
// with Gs queued on the locker's P (measured on the machine with FSGSBASE,
// 2026-12-06, 2 Ps, with the earlier spin of 30 pauses, a look at each)
// took BM_FanOut1000 from 385-1280 to 152-353 ns a task (its producer
// parked on most tasks with workers queued on its P) and kept
// BM_MutexContention/threads:2 at 7.5-9.9 ns (the pair settles on one P;
// spinning whenever another P is busy made it 16-38 ns); with the spaced
// looks of today's spin BM_FanOut1000 is 74-96 ns. Go spins only when the
// local queue is empty, the other way round; its parks cost far less than
// ours. Adaptive mutexes are the program's request to spin, and get a
// longer spin.
constexpr int64_t kQueuedSpinNs = 3000;
constexpr int64_t kAdaptiveSpinNs = 5000;

int64_t spin_count(int kind) {
  if (sched.nprocs < 2) return 0;
  if ((kind & kMutexKindMask) == PTHREAD_MUTEX_ADAPTIVE_NP) return kAdaptiveSpinNs;
  return lock_spin_pays(get_user_g()) ? kQueuedSpinNs : 0;
}

// The lock word alone. Returns 0, EBUSY (try_only), EINVAL or ETIMEDOUT.
// As in glibc, abstime is checked only when the caller would wait; a
// PRIO_INHERIT mutex also rejects a negative tv_sec then (the kernel's
// FUTEX_LOCK_PI does; glibc's own waits call it a timeout).
int acquire_word(MutexView* m, int kind, int64_t deadline, bool try_only, const struct timespec* abstime) {
  if (word_trylock(&m->lock)) return 0;
  if (try_only) return EBUSY;
  if (abstime && (!valid_timespec(abstime) || ((kind & kMutexPrioInherit) && abstime->tv_sec < 0))) return EINVAL;
  return word_lock_slow(&m->lock, spin_count(kind), deadline);
}

void release_word(MutexView* m) { word_unlock(&m->lock); }

void robust_link(MutexView* m) {
  G* g = get_user_g();
  if (!g) return;  // a thread that is not a G: not tracked (see the header)
  auto* head = static_cast<MutexView*>(g->robust_list);
  m->prev = nullptr;
  m->next = head;
  if (head) head->prev = m;
  g->robust_list = m;
}

void robust_unlink(MutexView* m) {
  G* g = get_user_g();
  if (!g) return;
  if (m->prev) m->prev->next = m->next;
  else if (g->robust_list == m) g->robust_list = m->next;
  if (m->next) m->next->prev = m->prev;
  m->prev = m->next = nullptr;
}

// Process-shared robust mutexes are glibc's: its lock code links them into
// the robust list in the holder's TCB (the robust_head the kernel would walk
// when the thread dies). No kernel thread registered a G's list, so when a
// G exits we do the kernel's part (handle_futex_death): every entry whose
// lock word still names this G gets FUTEX_OWNER_DIED and its tid cleared,
// and one waiter is woken with a shared FUTEX_WAKE (it may be in another
// process). The next locker then gets EOWNERDEAD from glibc, as natively.
// The main G's list is the initial thread's, which the kernel also walks
// when the process dies; a G that is not main and dies with the whole
// process is not covered (docs/ARCHITECTURE.md, "Known gaps").
struct RobustHead {
  void* next;
  long futex_offset;
  void* pending;
};

void release_glibc_robust_on_exit(G* gp) {
  auto* head = reinterpret_cast<RobustHead*>(static_cast<char*>(gp->tcb) + tcbo::kRobustHead);
  uint32_t tid = *reinterpret_cast<uint32_t*>(static_cast<char*>(gp->tcb) + tcbo::kTid);
  uintptr_t raw = reinterpret_cast<uintptr_t>(head->next);  // bit 0 of a link: the entry is PI
  for (int n = 0; n < 2048; n++) {                          // 2048: the kernel's ROBUST_LIST_LIMIT
    void* e = reinterpret_cast<void*>(raw & ~uintptr_t{1});
    if (!e || e == head) break;
    bool pi = raw & 1;
    raw = reinterpret_cast<uintptr_t>(*static_cast<void**>(e));
    auto* word = reinterpret_cast<std::atomic<uint32_t>*>(static_cast<char*>(e) + head->futex_offset);
    uint32_t v = word->load(std::memory_order_relaxed);
    while ((v & FUTEX_TID_MASK) == tid &&
           !word->compare_exchange_weak(v, (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED, std::memory_order_release)) {
    }
    if ((v & FUTEX_TID_MASK) == tid && !pi && (v & FUTEX_WAITERS))
      raw_syscall6(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAKE, 1, 0, 0, 0);
  }
  head->next = head;
  head->pending = nullptr;
}

void on_g_exit(G* gp) {
  mutex_release_robust_on_exit(gp->robust_list);
  gp->robust_list = nullptr;
  release_glibc_robust_on_exit(gp);
}

// A mutex's kind word, its PTHREAD_MUTEX_* type and its robustness, as
// lock and unlock both read them first.
struct KindBits {
  int kind;
  int type;
  bool robust;
};
inline KindBits decode_kind(MutexView* m) {
  int kind = m->kind.load(std::memory_order_relaxed);
  return {kind, kind & kMutexKindMask, (kind & kMutexRobust) != 0};
}

}  // namespace

namespace mnp {

int64_t abs_deadline(clockid_t clk, const struct timespec* abstime) { return timer_deadline_abs(clk, abstime); }

bool mutex_is_pshared(const pthread_mutex_t* mu) {
  return (reinterpret_cast<const MutexView*>(mu)->kind.load(std::memory_order_relaxed) & kMutexPshared) != 0;
}

void mutex_release_robust_on_exit(void* head) {
  for (auto* m = static_cast<MutexView*>(head); m;) {
    MutexView* next = m->next;
    m->prev = m->next = nullptr;
    m->count = 0;
    m->nusers = 0;
    m->holder = 0;
    m->owner.store(kOwnerDied, std::memory_order_relaxed);
    release_word(m);
    m = next;
  }
}

int mutex_lock_impl(pthread_mutex_t* mu, int64_t deadline, bool try_only, const struct timespec* abstime, bool user) {
  MutexView* m = view(mu);
  auto [kind, type, robust] = decode_kind(m);
  if (kind == kDestroyed) return EINVAL;
  int me = current_tid();
  if (robust ? m->holder == me && m->lock.load(std::memory_order_relaxed) != 0
             : type != PTHREAD_MUTEX_NORMAL && type != PTHREAD_MUTEX_ADAPTIVE_NP &&
                   m->owner.load(std::memory_order_relaxed) == me) {
    if (type == PTHREAD_MUTEX_RECURSIVE) {
      if (m->count == UINT_MAX) return EAGAIN;
      m->count++;
      return 0;
    }
    // glibc: trylock of a plain error-checking mutex by its owner is EBUSY;
    // every other relock by the owner of an error-checking one (robust,
    // PRIO_INHERIT and PRIO_PROTECT kinds' trylock included) EDEADLK.
    if (type == PTHREAD_MUTEX_ERRORCHECK)
      return try_only && !(kind & (kMutexRobust | kMutexPrioInherit | kMutexPrioProtect)) ? EBUSY : EDEADLK;
    if (try_only) return EBUSY;
    // NORMAL kinds relocked by their holder deadlock, as with glibc.
  }
  int r = acquire_word(m, kind, deadline, try_only, abstime);
  if (r) return r;
  if (robust) {
    // A robust mutex learns that it is unusable only once its word is
    // held, as in glibc, whose trylock then keeps holding it (its unlock
    // check compares against the wrong value): so does ours, and the
    // caller's unlock makes the mutex usable again there as well.
    int o = m->owner.load(std::memory_order_relaxed);
    if (o == kNotRecoverable) {
      m->count = 0;
      if (!try_only) {
        release_word(m);
        return ENOTRECOVERABLE;
      }
      m->holder = me;
      m->prev = m->next = nullptr;  // held, yet on no list
      return ENOTRECOVERABLE;
    }
    m->holder = me;
    robust_link(m);
    m->count = 1;
    if (o == kOwnerDied) {
      m->owner.store(kInconsistent, std::memory_order_relaxed);
      return EOWNERDEAD;  // the dead owner's use is not given back: no nusers change
    }
  }
  m->owner.store(me, std::memory_order_relaxed);
  m->count = 1;
  // glibc counts the users of a mutex (destroy says EBUSY while any):
  // lockers, and the threads waiting on a condvar with it (`user` false
  // for the condvar's own unlock and relock).
  if (user) m->nusers++;
  return 0;
}

int mutex_unlock_impl(pthread_mutex_t* mu, bool user) {
  MutexView* m = view(mu);
  auto [kind, type, robust] = decode_kind(m);
  if (kind == kDestroyed) return EINVAL;
  int me = current_tid();
  if (robust) {
    bool mine = m->holder == me && m->lock.load(std::memory_order_relaxed) != 0;
    int o = m->owner.load(std::memory_order_relaxed);
    if (type == PTHREAD_MUTEX_RECURSIVE) {
      // glibc: inconsistent and held, each unlock but the last says
      // ENOTRECOVERABLE; otherwise the owner field decides.
      if (mine && o == kInconsistent) {
        if (--m->count != 0) return ENOTRECOVERABLE;
      } else {
        if (o != me) return EPERM;
        if (--m->count != 0) return 0;
      }
    } else if (!mine) {
      return EPERM;
    }
    robust_unlink(m);
    m->holder = 0;
    if (user) m->nusers--;
    if (o == kInconsistent) {
      // Unlocked without pthread_mutex_consistent: unusable from now on, and
      // every waiter must learn it.
      m->owner.store(kNotRecoverable, std::memory_order_relaxed);
      m->lock.store(0, std::memory_order_release);
      sema_wake(&m->lock, INT_MAX);
      return 0;
    }
    m->owner.store(0, std::memory_order_relaxed);
    release_word(m);
    return 0;
  }
  // Owner checked for recursive, error-checking and PRIO_INHERIT kinds.
  if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK || (kind & kMutexPrioInherit)) {
    if (m->owner.load(std::memory_order_relaxed) != me || m->lock.load(std::memory_order_relaxed) == 0) return EPERM;
    if (type == PTHREAD_MUTEX_RECURSIVE && --m->count != 0) return 0;
  }
  m->owner.store(0, std::memory_order_relaxed);
  if (user) m->nusers--;
  release_word(m);
  // A G this one woke meanwhile (a condvar signal made with the mutex held,
  // or this unlock) and which may take the P from it (kPreemptWake,
  // core/sched.h) runs now, with the mutex free for it.
  if (user) {
    G* g = get_user_g();
    if (g && MNP_UNLIKELY(g->preempt.load(std::memory_order_relaxed) == kPreemptWake)) preempt_check();
  }
  return 0;
}

MNP_STARTUP void interpose_mutex_init() { set_g_exit_hook(on_g_exit); }

}  // namespace mnp

extern "C" {

MNP_EXPORT int pthread_mutex_init(pthread_mutex_t* mu, const pthread_mutexattr_t* attr) noexcept {
  int type = PTHREAD_MUTEX_DEFAULT, proto = PTHREAD_PRIO_NONE, robust = PTHREAD_MUTEX_STALLED,
      pshared = PTHREAD_PROCESS_PRIVATE, ceiling = 0;
  if (attr) {
    pthread_mutexattr_gettype(attr, &type);
    pthread_mutexattr_getprotocol(attr, &proto);
    pthread_mutexattr_getrobust(attr, &robust);
    pthread_mutexattr_getpshared(attr, &pshared);
    pthread_mutexattr_getprioceiling(attr, &ceiling);
  }
  if (pshared == PTHREAD_PROCESS_SHARED) return real_pthread_mutex_init(mu, attr);
  MutexView* m = view(mu);
  __builtin_memset(static_cast<void*>(m), 0, sizeof *m);
  int kind = type & kMutexKindMask;
  if (robust == PTHREAD_MUTEX_ROBUST) kind |= kMutexRobust;
  if (proto == PTHREAD_PRIO_INHERIT) kind |= kMutexPrioInherit;
  if (proto == PTHREAD_PRIO_PROTECT) kind |= kMutexPrioProtect | ((ceiling & 0xff) << kMutexCeilingShift);
  m->kind.store(kind, std::memory_order_relaxed);
  return 0;
}

MNP_EXPORT int pthread_mutex_destroy(pthread_mutex_t* mu) noexcept {
  if (mutex_is_pshared(mu)) return real_pthread_mutex_destroy(mu);
  MutexView* m = view(mu);
  int kind = m->kind.load(std::memory_order_relaxed);
  if (!(kind & kMutexRobust) && m->nusers != 0) return EBUSY;
  m->kind.store(kDestroyed, std::memory_order_relaxed);
  return 0;
}

MNP_EXPORT int pthread_mutex_lock(pthread_mutex_t* mu) noexcept {
  if (mutex_is_pshared(mu)) return handoff(real_pthread_mutex_lock, mu);
  return mutex_lock_impl(mu, kNever, false, nullptr);
}

MNP_EXPORT int pthread_mutex_trylock(pthread_mutex_t* mu) noexcept {
  if (mutex_is_pshared(mu)) return real_pthread_mutex_trylock(mu);
  return mutex_lock_impl(mu, kNever, true, nullptr);
}

MNP_EXPORT int pthread_mutex_clocklock(pthread_mutex_t* mu, clockid_t clk, const struct timespec* abstime) noexcept {
  if (mutex_is_pshared(mu)) return handoff(real_pthread_mutex_clocklock, mu, clk, abstime);
  if (!supported_clock(clk)) return EINVAL;
  int64_t deadline = valid_timespec(abstime) ? abs_deadline(clk, abstime) : 0;
  return mutex_lock_impl(mu, deadline, false, abstime);
}

MNP_EXPORT int pthread_mutex_timedlock(pthread_mutex_t* mu, const struct timespec* abstime) noexcept {
  if (mutex_is_pshared(mu)) return handoff(real_pthread_mutex_timedlock, mu, abstime);
  return pthread_mutex_clocklock(mu, CLOCK_REALTIME, abstime);
}

MNP_EXPORT int pthread_mutex_unlock(pthread_mutex_t* mu) noexcept {
  if (mutex_is_pshared(mu)) return real_pthread_mutex_unlock(mu);
  return mutex_unlock_impl(mu);
}

MNP_EXPORT int pthread_mutex_consistent(pthread_mutex_t* mu) noexcept {
  if (mutex_is_pshared(mu)) return real_pthread_mutex_consistent(mu);
  MutexView* m = view(mu);
  int kind = m->kind.load(std::memory_order_relaxed);
  if (!(kind & kMutexRobust) || m->owner.load(std::memory_order_relaxed) != kInconsistent) return EINVAL;
  m->owner.store(current_tid(), std::memory_order_relaxed);
  return 0;
}

MNP_EXPORT int pthread_mutex_getprioceiling(const pthread_mutex_t* mu, int* ceiling) noexcept {
  int kind = reinterpret_cast<const MutexView*>(mu)->kind.load(std::memory_order_relaxed);
  if (kind == kDestroyed || !(kind & kMutexPrioProtect)) return EINVAL;
  *ceiling = (kind >> kMutexCeilingShift) & 0xff;
  return 0;
}

MNP_EXPORT int pthread_mutex_setprioceiling(pthread_mutex_t* mu, int ceiling, int* old) noexcept {
  MutexView* m = view(mu);
  int kind = m->kind.load(std::memory_order_relaxed);
  if (kind == kDestroyed || !(kind & kMutexPrioProtect)) return EINVAL;
  if (ceiling < sched_get_priority_min(SCHED_FIFO) || ceiling > sched_get_priority_max(SCHED_FIFO)) return EINVAL;
  // POSIX: lock, change, unlock (unless the caller already holds it; an
  // error-checking one held by the caller is EDEADLK in glibc).
  bool held = m->owner.load(std::memory_order_relaxed) == current_tid() && m->lock.load() != 0;
  if (held && (kind & kMutexKindMask) == PTHREAD_MUTEX_ERRORCHECK) return EDEADLK;
  if (!held) {
    int r = mutex_lock_impl(mu, kNever, false, nullptr);
    if (r) return r;
  }
  // glibc declares old non-null but accepts null; so do we.
  if (int* volatile o = old; o) *o = (kind >> kMutexCeilingShift) & 0xff;
  m->kind.store((kind & ~(0xff << kMutexCeilingShift)) | ((ceiling & 0xff) << kMutexCeilingShift),
                std::memory_order_relaxed);
  if (!held) mutex_unlock_impl(mu);
  return 0;
}

}  // extern "C"
