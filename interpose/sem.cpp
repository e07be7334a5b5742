// interpose/sem.cpp — unnamed process-private semaphores park the G.
//
// Layout inside sem_t: value (32 bits) at offset 0, number of waiters at 4,
// and glibc's `private` field at 8. glibc stores there the flag it XORs into
// its futex operations (lowlevellock-futex.h: LLL_PRIVATE is 0, LLL_SHARED is
// FUTEX_PRIVATE_FLAG), so the field is 0 for a process-private semaphore and
// 128 for a shared one, named semaphores from sem_open included (measured on
// glibc 2.36: sem_init(pshared 0) -> 0, sem_init(pshared 1) -> 128, sem_open
// -> 128). Our private semaphores keep glibc's 0, so zeroed memory is a
// private semaphore too. Shared ones stay glibc's: their memory is visible to
// other processes, whose waiters sleep in the kernel on a shared futex and
// whose posts issue a shared FUTEX_WAKE, which no G parked in the sema table
// would ever hear. Their waits block in the kernel through the syscall
// hand-off, so the P goes on running the process's other Gs.
// A waiter counts itself, then sleeps while value == 0; sem_post bumps the
// value before it looks for waiters, so a post is never missed.
#include <errno.h>
#include <limits.h>
#include <semaphore.h>

#include "core/cancel.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/sema.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

struct SemView {
  std::atomic<uint32_t> value;
  std::atomic<uint32_t> waiters;
  int priv;  // glibc: 0 when private, 128 (FUTEX_PRIVATE_FLAG, its LLL_SHARED) when shared
  int pad;
  char unused[16];
};
static_assert(sizeof(SemView) == sizeof(sem_t));

SemView* view(sem_t* s) { return reinterpret_cast<SemView*>(s); }
bool shared(sem_t* s) { return view(s)->priv != 0; }

bool try_take(SemView* s) {
  uint32_t v = s->value.load(std::memory_order_relaxed);
  while (v > 0)
    if (s->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
  return false;
}

// sem_wait and sem_timedwait are cancellation points that "shall occur":
// a due request is acted on even when the semaphore could be taken.
int sem_wait_impl(sem_t* sem, int64_t deadline) {
  SemView* s = view(sem);
  for (;;) {
    cancel_point();
    if (try_take(s)) return 0;
    s->waiters.fetch_add(1, std::memory_order_seq_cst);
    int r = sema_wait(&s->value, 0, deadline, kBitsetAny, {.cancelable = true, .interruptible = true});
    s->waiters.fetch_sub(1, std::memory_order_relaxed);
    if (r == EINTR) {  // a handler ended the futex wait natively (core/sema.h)
      errno = EINTR;
      return -1;
    }
    if (r == ETIMEDOUT) {
      if (try_take(s)) return 0;
      errno = ETIMEDOUT;
      return -1;
    }
  }
}

}  // namespace

extern "C" {

MNP_EXPORT int sem_init(sem_t* sem, int pshared, unsigned value) noexcept {
  if (pshared) return real_sem_init(sem, pshared, value);
  if (value > SEM_VALUE_MAX) {
    errno = EINVAL;
    return -1;
  }
  SemView* s = view(sem);
  __builtin_memset(static_cast<void*>(s), 0, sizeof *s);
  s->value.store(value, std::memory_order_relaxed);  // priv stays 0: private
  return 0;
}

MNP_EXPORT int sem_destroy(sem_t* sem) noexcept { return shared(sem) ? real_sem_destroy(sem) : 0; }

MNP_EXPORT int sem_wait(sem_t* sem) {
  if (shared(sem)) return handoff(real_sem_wait, sem);
  return sem_wait_impl(sem, kNever);
}

MNP_EXPORT int sem_trywait(sem_t* sem) noexcept {
  if (shared(sem)) return real_sem_trywait(sem);
  if (try_take(view(sem))) return 0;
  errno = EAGAIN;
  return -1;
}

// glibc checks the clock and the time before it tries the semaphore;
// sem_timedwait also acts on a due cancellation request first.
MNP_EXPORT int sem_clockwait(sem_t* sem, clockid_t clk, const struct timespec* abstime) {
  if (shared(sem)) return handoff(real_sem_clockwait, sem, clk, abstime);
  if (!supported_clock(clk) || !valid_timespec(abstime)) {
    errno = EINVAL;
    return -1;
  }
  if (try_take(view(sem))) return 0;
  return sem_wait_impl(sem, abs_deadline(clk, abstime));
}

MNP_EXPORT int sem_timedwait(sem_t* sem, const struct timespec* abstime) {
  if (shared(sem)) return handoff(real_sem_timedwait, sem, abstime);
  if (!valid_timespec(abstime)) {
    errno = EINVAL;
    return -1;
  }
  return sem_wait_impl(sem, abs_deadline(CLOCK_REALTIME, abstime));
}

MNP_EXPORT int sem_post(sem_t* sem) noexcept {
  if (shared(sem)) return real_sem_post(sem);
  SemView* s = view(sem);
  uint32_t v = s->value.load(std::memory_order_relaxed);
  do {
    if (v >= SEM_VALUE_MAX) {
      errno = EOVERFLOW;
      return -1;
    }
  } while (!s->value.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst));
  if (s->waiters.load(std::memory_order_seq_cst) > 0) {
    sema_wake(&s->value, 1);
    preempt_check();  // the woken G may take the P (kPreemptWake, core/sched.h)
  }
  return 0;
}

MNP_EXPORT int sem_getvalue(sem_t* sem, int* out) noexcept {
  if (shared(sem)) return real_sem_getvalue(sem, out);
  *out = static_cast<int>(view(sem)->value.load(std::memory_order_relaxed));
  return 0;
}

}  // extern "C"
