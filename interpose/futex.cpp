// interpose/futex.cpp — syscall(SYS_futex, ...) parks Gs (docs/ARCHITECTURE.md,
// "Blocking calls").
//
// Rust's std, libstdc++'s atomic<T>::wait and std::counting_semaphore, and
// many hand-written locks call the futex system call through syscall(). For
// process-private futexes the operations WAIT, WAKE, WAIT_BITSET,
// WAKE_BITSET, REQUEUE, CMP_REQUEUE and WAKE_OP are served by the sema table
// with the kernel's return values and errno (EAGAIN on a value mismatch,
// ETIMEDOUT, EINVAL, counts woken/requeued). Shared futexes and the other
// operations (PI) go to the kernel through the blocking path (blocking.h).
// Calls that take a thread id go to tid.cpp when the id is a G's (and gettid
// returns the G's), and every other syscall number passes through
// untouched. A G waiting here is watched by sysmon for wakes from threads
// the runtime does not know (sema.h, `watch`).
#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>

#include "core/sched.h"
#include "core/sema.h"
#include "interpose/blocking.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

long fail(int e) {
  errno = e;
  return -1;
}

int32_t sign12(uint32_t v) { return static_cast<int32_t>(v << 20) >> 20; }

// FUTEX_WAKE_OP: *uaddr2 = oldval OP oparg; wake val on uaddr; if
// (oldval CMP cmparg) wake val2 on uaddr2.
long wake_op(std::atomic<uint32_t>* uaddr, int nr1, std::atomic<uint32_t>* uaddr2, int nr2, uint32_t val3) {
  uint32_t op = (val3 >> 28) & 0xf, cmp = (val3 >> 24) & 0xf;
  int32_t oparg = sign12((val3 >> 12) & 0xfff), cmparg = sign12(val3 & 0xfff);
  if (op & FUTEX_OP_OPARG_SHIFT) {
    if (oparg < 0 || oparg > 31) return fail(EINVAL);
    oparg = 1 << oparg;
    op &= ~FUTEX_OP_OPARG_SHIFT;
  }
  uint32_t old = uaddr2->load(std::memory_order_relaxed), nv;
  do {
    switch (op) {
      case FUTEX_OP_SET:
        nv = static_cast<uint32_t>(oparg);
        break;
      case FUTEX_OP_ADD:
        nv = old + static_cast<uint32_t>(oparg);
        break;
      case FUTEX_OP_OR:
        nv = old | static_cast<uint32_t>(oparg);
        break;
      case FUTEX_OP_ANDN:
        nv = old & ~static_cast<uint32_t>(oparg);
        break;
      case FUTEX_OP_XOR:
        nv = old ^ static_cast<uint32_t>(oparg);
        break;
      default:
        return fail(ENOSYS);  // the kernel's answer for an unknown op
    }
  } while (!uaddr2->compare_exchange_weak(old, nv, std::memory_order_seq_cst));
  int32_t o = static_cast<int32_t>(old);
  bool c;
  switch (cmp) {
    case FUTEX_OP_CMP_EQ:
      c = o == cmparg;
      break;
    case FUTEX_OP_CMP_NE:
      c = o != cmparg;
      break;
    case FUTEX_OP_CMP_LT:
      c = o < cmparg;
      break;
    case FUTEX_OP_CMP_LE:
      c = o <= cmparg;
      break;
    case FUTEX_OP_CMP_GT:
      c = o > cmparg;
      break;
    case FUTEX_OP_CMP_GE:
      c = o >= cmparg;
      break;
    default:
      return fail(ENOSYS);
  }
  long n = sema_wake(uaddr, nr1);
  if (c) n += sema_wake(uaddr2, nr2);
  return n;
}

// The kernel's address checks, made after the argument checks as the
// kernel makes them: EFAULT for a null page (other unmapped addresses are
// not detected and fault in the program), EINVAL when unaligned.
int addr_error(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  if (a < 4096) return EFAULT;
  return (a & 3) ? EINVAL : 0;
}

long do_futex(long a1, long a2, long a3, long a4, long a5, long a6) {
  auto* uaddr = reinterpret_cast<std::atomic<uint32_t>*>(a1);
  int op = static_cast<int>(a2);
  uint32_t val = static_cast<uint32_t>(a3);
  const auto* ts = reinterpret_cast<const struct timespec*>(a4);
  auto* uaddr2 = reinterpret_cast<std::atomic<uint32_t>*>(a5);
  uint32_t val3 = static_cast<uint32_t>(a6);
  int cmd = op & FUTEX_CMD_MASK;
  bool realtime = op & FUTEX_CLOCK_REALTIME;
  // The kernel: the timeout first, then FUTEX_CLOCK_REALTIME on an
  // operation other than WAIT_BITSET (ENOSYS), then the operation's own
  // arguments, then the address.
  switch (cmd) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      if (ts && (!valid_timespec(ts) || ts->tv_sec < 0)) return fail(EINVAL);
      if (realtime && cmd != FUTEX_WAIT_BITSET) return fail(ENOSYS);
      uint32_t bitset = cmd == FUTEX_WAIT ? kBitsetAny : val3;
      if (!bitset) return fail(EINVAL);
      if (int e = addr_error(uaddr)) return fail(e);
      int64_t deadline = kNever;
      if (ts) {
        if (cmd == FUTEX_WAIT) {  // relative, measured on CLOCK_MONOTONIC
          deadline = nanotime() + static_cast<int64_t>(ts->tv_sec) * 1000000000 + ts->tv_nsec;
        } else {
          deadline = abs_deadline(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, ts);
        }
      }
      // EINTR by the kernel's rule for a handler (core/sema.h). Watched: a
      // wake from a thread the runtime did not create reaches the kernel
      // only (docs/ARCHITECTURE.md, "Blocking calls").
      int r = sema_wait(uaddr, val, deadline, bitset, {.reason = kWaitFutex, .interruptible = true, .watch = true});
      return r ? fail(r) : 0;
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      if (realtime) return fail(ENOSYS);
      uint32_t bitset = cmd == FUTEX_WAKE ? kBitsetAny : val3;
      if (!bitset) return fail(EINVAL);
      if (int e = addr_error(uaddr)) return fail(e);
      return sema_wake(uaddr, static_cast<int>(val > 0x7fffffff ? 0x7fffffff : val), bitset);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      if (realtime) return fail(ENOSYS);
      int nwake = static_cast<int>(val), nmove = static_cast<int>(a4);
      if (nwake < 0 || nmove < 0) return fail(EINVAL);
      if (int e = addr_error(uaddr)) return fail(e);
      if (int e = addr_error(uaddr2)) return fail(e);
      uint32_t cmpv = val3;
      int r = sema_requeue(uaddr, uaddr2, nwake, nmove, cmd == FUTEX_CMP_REQUEUE ? &cmpv : nullptr, true);
      return r < 0 ? fail(-r) : r;
    }
    case FUTEX_WAKE_OP:
      if (realtime) return fail(ENOSYS);
      if (int e = addr_error(uaddr)) return fail(e);
      if (int e = addr_error(uaddr2)) return fail(e);
      return wake_op(uaddr, static_cast<int>(val), uaddr2, static_cast<int>(a4), val3);
    default:
      return -2;  // not ours
  }
}

}  // namespace

extern "C" MNP_EXPORT long syscall(long number, ...) noexcept {
  va_list ap;
  va_start(ap, number);
  long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
  long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_futex && (a2 & FUTEX_PRIVATE_FLAG)) {
    long r = do_futex(a1, a2, a3, a4, a5, a6);
    if (r != -2) return r;
  }
  if (number == SYS_futex && get_user_g()) {
    // Shared or PI futex: the kernel's, with the P handed off meanwhile.
    return handoff(real_syscall, number, a1, a2, a3, a4, a5, a6);
  }
  const long args[6] = {a1, a2, a3, a4, a5, a6};
  if (long r; tid_syscall(number, args, &r)) return r;   // thread ids of Gs (tid.cpp)
  if (long r; wire_syscall(number, args, &r)) return r;  // per-thread kernel state (wire.cpp)
  return real_syscall(number, a1, a2, a3, a4, a5, a6);
}
