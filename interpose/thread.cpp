// interpose/thread.cpp — thread lifecycle: create, join, detach, exit, self,
// yield, attributes, names.
//
// pthread_t of a G is the address of its glibc TCB, as for native threads,
// so glibc code that is not interposed and reads the handle sees a valid
// struct pthread. Handles are validated through the handle table (gmem.h):
// a bad handle gets ESRCH, never a crash. Threads created before the runtime
// was up are real glibc threads; their handles go to the real functions.
// glibc's headers carry extern-inline bodies of pthread_equal, which this
// file defines: gcc accepts the second body of a gnu_inline function, clang
// does not, so the headers' copies are left out.
#ifndef __NO_INLINE__
#define __NO_INLINE__ 1
#endif
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/gmem.h"
#include "core/netpoll.h"
#include "core/preempt.h"
#include "core/ksched.h"
#include "core/sched.h"
#include "core/sigpend.h"
#include "core/tcb.h"
#include "core/timer.h"
#include "interpose/blocking.h"
#include "interpose/cpuclock.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

constinit int g_concurrency = 0;
// sched_yield: one kernel yield per this many calls in a row that found no
// G to run. An idle yield costs tens of ns, the system call about a µs on
// a VM: the loop pays a few per cent, and gives its CPU away within a few µs.
constexpr uint32_t kYieldIdleSyscall = 128;

// glibc's struct pthread_attr (internal; pthread_attr_t is its opaque storage).
struct AttrView {
  int sched_priority;
  int schedpolicy;
  int flags;
  size_t guardsize;
  void* stackaddr;  // top of the stack when kAttrStackAddr is set
  size_t stacksize;
};
constexpr int kAttrDetached = 0x1;
constexpr int kAttrStackAddr = 0x8;
static_assert(sizeof(pthread_attr_t) >= sizeof(AttrView));

// Timer of a timed join: withdraws the joiner unless the thread exited first
// (then the exiter wakes it); returns the joiner to ready (timer.h). tm->arg
// = null tells the joiner it timed out.
G* join_timeout(Timer* tm) {
  G* target = static_cast<G*>(tm->arg);
  uintptr_t me = reinterpret_cast<uintptr_t>(tm->g);
  if (!target->join.compare_exchange_strong(me, kJoinable, std::memory_order_acq_rel)) return nullptr;
  tm->arg = nullptr;
  return tm->g;
}

// pthread_cancel of a G parked in a join: gives the join word back, as the
// timeout does; the exiter, finding no joiner, readies nobody.
struct JoinWait {
  CancelWait cw;
  G* target;
  G* self;
};
bool join_undo(CancelWait* cw) {
  auto* jw = reinterpret_cast<JoinWait*>(cw);
  uintptr_t me = reinterpret_cast<uintptr_t>(jw->self);
  if (!jw->target->join.compare_exchange_strong(me, kJoinable, std::memory_order_acq_rel)) return false;
  ready(jw->self, true);
  return true;
}
void join_cancel(CancelWait* cw) { join_undo(cw); }

// Parks cur, which just stored itself in t's join word, unless a cancel
// request is due and the word can still be taken back.
void join_park(G* cur, G* t) {
  // A handler of the program's for this G (core/sigpend.h) undoes the
  // join the same way; the caller's loop joins again after it ran.
  JoinWait jw{{join_cancel, join_undo}, t, cur};
  if (cancel_arm(cur, &jw.cw)) {
    uintptr_t me = reinterpret_cast<uintptr_t>(cur);
    if (t->join.compare_exchange_strong(me, kJoinable, std::memory_order_acq_rel)) {
      cancel_disarm(cur);
      return;
    }
    // The exiter took the word and is about to ready us: take that wake-up.
  }
  sched.njoining.fetch_add(1, std::memory_order_relaxed);
  park(kWaitJoin);
  sched.njoining.fetch_sub(1, std::memory_order_relaxed);
  cancel_disarm(cur);
}

// Join of a G by whoever calls (G or not). abstime null: no time limit.
// try_only: EBUSY instead of waiting. A join that may wait is a cancellation
// point for a G: a canceled joiner leaves t joinable.
int join_g(G* t, void** ret, bool try_only, clockid_t clk, const struct timespec* abstime) {
  G* cur = get_user_g();
  // A P before this G publishes itself as the joiner (sched.h, ensure_p).
  if (cur && runtime_up) ensure_p(cur);
  // glibc's tryjoin looks at the thread id first: EBUSY while the thread
  // runs, whoever asks (the thread itself, a second joiner, the creator of
  // a detached thread).
  if (try_only) {
    uintptr_t w = t->join.load(std::memory_order_acquire);
    if (w != kExited && w != kJoined && w != kDetachedDone) return EBUSY;
  }
  if (t == cur) return EDEADLK;
  if (cur && cur->join.load(std::memory_order_acquire) == reinterpret_cast<uintptr_t>(t)) return EDEADLK;
  for (;;) {
    if (!try_only) cancel_point();
    uintptr_t w = t->join.load(std::memory_order_acquire);
    if (w == kExited) {
      if (!t->join.compare_exchange_strong(w, kJoined, std::memory_order_acq_rel)) continue;
      if (ret) *ret = t->result;
      g_reap(t);
      return 0;
    }
    // glibc: a joined thread's cached handle has no thread (ESRCH, but
    // tryjoin looks at the thread id first: EBUSY); detached (finished or
    // not) or being joined by another: EINVAL.
    if (w == kJoined) return try_only ? EBUSY : ESRCH;
    if (w != kJoinable) return EINVAL;
    if (try_only) return EBUSY;
    // glibc retries its futex wait until the thread ends when the wait
    // says EINVAL: an invalid abstime is no time limit.
    if (abstime && (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000)) abstime = nullptr;
    if (abstime) {
      int64_t deadline = timer_deadline_abs(clk, abstime);
      if (deadline <= nanotime()) return ETIMEDOUT;
      if (cur) {
        if (!t->join.compare_exchange_strong(w, reinterpret_cast<uintptr_t>(cur), std::memory_order_acq_rel)) continue;
        Timer tm;
        tm.when = deadline;
        tm.fn = join_timeout;
        tm.g = cur;
        tm.arg = t;
        timer_add(&tm);
        join_park(cur, t);
        if (!timer_del(&tm) && tm.arg == nullptr) return ETIMEDOUT;
        continue;  // the exiter woke us: the join word is kExited now
      }
      if (!t->join.compare_exchange_strong(w, kKernelJoiner, std::memory_order_acq_rel)) continue;
      for (;;) {
        if (t->exited.load(std::memory_order_acquire)) break;
        int64_t left = deadline - nanotime();
        if (left <= 0) {
          uintptr_t k = kKernelJoiner;
          if (t->join.compare_exchange_strong(k, kJoinable, std::memory_order_acq_rel)) return ETIMEDOUT;
          continue;  // it exited meanwhile; exited is about to be set
        }
        struct timespec rel = {static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
        futex_wait(&t->exited, 0, &rel);
      }
      continue;
    }
    if (cur) {
      if (!t->join.compare_exchange_strong(w, reinterpret_cast<uintptr_t>(cur), std::memory_order_acq_rel)) continue;
      join_park(cur, t);
    } else {
      if (!t->join.compare_exchange_strong(w, kKernelJoiner, std::memory_order_acq_rel)) continue;
      while (t->exited.load(std::memory_order_acquire) == 0) futex_wait(&t->exited, 0);
    }
  }
}

// A G that has finished but is not yet joined: glibc's calls that need the
// thread's kernel id find none (its tid is 0 then).
bool g_gone(G* t) { return t->status.load(std::memory_order_acquire) == kGDead; }

// As the kernel's sched_setaffinity: EINVAL when the mask has no CPU this
// process may use.
int check_affinity(size_t size, const cpu_set_t* set) {
  // The kernel's answer to a null set. glibc declares the set nonnull, so
  // the compiler would drop a plain test: hide the pointer's origin first.
  const void* p = set;
  asm("" : "+r"(p));
  if (!p) return EFAULT;
  cpu_set_t allowed;
  long got = raw_syscall(SYS_sched_getaffinity, 0, sizeof allowed, reinterpret_cast<long>(&allowed));
  if (got < 0) return EINVAL;
  // The kernel fills only its own mask size (got bytes); the rest is not ours.
  size_t n = size < static_cast<size_t>(got) ? size : static_cast<size_t>(got);
  const auto* a = reinterpret_cast<const unsigned char*>(set);
  const auto* b = reinterpret_cast<const unsigned char*>(&allowed);
  for (size_t i = 0; i < n; i++)
    if (a[i] & b[i]) return 0;
  // Nothing in common with this kernel thread's own mask, which may be the
  // caller's narrowed one (a wired G pinned to CPU 0: libgomp's binding
  // pins its master, then creates each thread with the next CPU). The
  // kernel checks against the CPUs the process may use, not the caller's:
  // ask it, on this thread, and put the mask back, with the runtime's lock
  // held so that no handler moves the G to another M in between.
  m_lock_enter();
  long r = raw_syscall(SYS_sched_setaffinity, 0, static_cast<long>(size), reinterpret_cast<long>(set));
  if (r == 0) r = raw_syscall(SYS_sched_setaffinity, 0, got, reinterpret_cast<long>(&allowed));
  m_lock_exit();
  return r == 0 ? 0 : static_cast<int>(-r);
}

// The kernel's priority range of a policy is fixed: read once, it saves
// two system calls a call. Packed as 1 | (min + 1) << 1 | (max + 1) << 9
// (an unknown policy: min = max = -1); 0: not read yet.
constinit std::atomic<uint32_t> g_prio_range[8]{};
int check_sched(int policy, const struct sched_param* param) {
  if (!param) return EINVAL;
  bool cached = policy >= 0 && policy < 8;
  uint32_t r = cached ? g_prio_range[policy].load(std::memory_order_relaxed) : 0;
  int lo, hi;
  if (r != 0) {
    lo = static_cast<int>((r >> 1) & 0xff) - 1;
    hi = static_cast<int>(r >> 9) - 1;
  } else {
    lo = sched_get_priority_min(policy), hi = sched_get_priority_max(policy);
    if (lo < 0 || hi < 0) lo = hi = -1;
    if (cached)
      g_prio_range[policy].store(1u | static_cast<uint32_t>(lo + 1) << 1 | static_cast<uint32_t>(hi + 1) << 9,
                                 std::memory_order_relaxed);
  }
  if (lo < 0 || param->sched_priority < lo || param->sched_priority > hi) return EINVAL;
  if ((policy == SCHED_FIFO || policy == SCHED_RR) && geteuid() != 0) return EPERM;
  return 0;
}

// The kernel keeps the CPUs of a mask that exist; the record is that, or
// "the process's mask" when it is the same.
// The configured CPU count, read once: a constinit cache (a local static
// would need a guard, and __cxa_guard_acquire made the shim depend on
// libstdc++ and libm, two more libraries for every process to load).
constinit std::atomic<int> g_ncpu{0};
void set_mask_record(G* t, size_t size, const cpu_set_t* set) {
  cpu_set_t m;
  CPU_ZERO(&m);
  memcpy(&m, set, size < sizeof m ? size : sizeof m);
  int ncpu = g_ncpu.load(std::memory_order_relaxed);
  if (ncpu == 0) g_ncpu.store(ncpu = get_nprocs_conf(), std::memory_order_relaxed);
  for (int c = ncpu; c < CPU_SETSIZE; c++) CPU_CLR(c, &m);
  if (CPU_EQUAL(&m, &ksched_default_mask())) {
    t->affinity_set = false;
  } else {
    t->affinity = m;
    t->affinity_set = true;
  }
}

// As the kernel's sched_getaffinity of t: the bytes it fills (the rest of
// the caller's set zeroed, as glibc's wrappers do), or -errno.
long g_getaffinity(G* t, size_t size, cpu_set_t* set) {
  // The kernel checks the size (EINVAL when it holds fewer bits than there
  // are possible CPUs, or is no whole number of longs: 8 bytes do on this
  // machine) and the caller's buffer (EFAULT for a bad one: strace probes
  // with a null set) as it fills it with this M's mask; what it filled
  // then gets t's.
  long k = raw_syscall(SYS_sched_getaffinity, 0, static_cast<long>(size), reinterpret_cast<long>(set));
  if (k < 0) return k;
  const cpu_set_t& m = t->affinity_set ? t->affinity : ksched_default_mask();
  size_t n = static_cast<size_t>(k) < sizeof m ? static_cast<size_t>(k) : sizeof m;
  memcpy(set, &m, n);
  memset(reinterpret_cast<char*>(set) + n, 0, size - n);
  return k;
}

// 0: a G's handle (*gp set); -1: a glibc thread's, for the real function;
// else ESRCH. The caller's own handle is valid even when the caller is no
// G: a runtime thread (an M on its g0, sysmon) is a glibc thread the table
// does not list, and code instrumented by a sanitizer asks glibc about its
// own stack there (ASan's __asan_handle_no_return before a noreturn call
// calls pthread_getattr_np(pthread_self())).
int native_or_esrch(uintptr_t h, G** gp) {
  HandleKind k = handle_kind(h, gp);
  if (k == HandleKind::kG) return 0;
  if (k == HandleKind::kNative) return -1;
  return h == reinterpret_cast<uintptr_t>(arch_tcb_load_ptr<tcbo::kSelf>()) && !get_user_g() ? -1 : ESRCH;
}

int proc_comm_path(char* buf, size_t n, int tid) {
  char* e = buf + n - 1;
  char* p = fmt_str(buf, e, "/proc/self/task/");
  p = fmt_u64(p, e, static_cast<uint64_t>(tid));
  p = fmt_str(p, e, "/comm");
  *p = 0;
  return 0;
}

}  // namespace

namespace mnp {

namespace {
constinit std::atomic<bool> g_setxid_wrapped{false};
}

int real_runtime_thread_create(void* (*fn)(void*), void* arg) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 256 * 1024);
  // Born with every signal blocked (glibc keeps its own two open), so the
  // kernel cannot pick the thread for a signal of the program's before it
  // has a G: sysmon keeps this mask, an M sets its own (mstart). glibc's
  // pthread_sigmask: the interposer never blocks the runtime's signal.
  sigset_t all, old;
  sigfillset(&all);
  real_pthread_sigmask(SIG_SETMASK, &all, &old);
  // What the next pthread_create runs on this thread runs as a thread that
  // is no G: another preloaded library's wrapper (valgrind's drd waits on
  // a condition variable until the new thread has started), the program's
  // allocator. This is the runtime making sysmon, its start lock held
  // (sysmon_ensure_slow), or in an ASan build an M (core/mthread.h), the
  // M held. A park here ran sysmon_ensure again on that lock and hung for
  // good. No handler of the program's sees the G
  // hidden: glibc's pthread_sigmask leaves only its own SIGCANCEL and
  // SIGSETXID open, whose handlers find the thread by tid, and the
  // runtime's signal handler leaves a hidden G alone (poke_serve).
  G* hidden = tls_g;
  tls_g = nullptr;
  pthread_t t;
  int r = real_pthread_create(&t, &a, fn, arg);
  tls_g = hidden;
  real_pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&a);
  // glibc's first pthread_create installs its SIGSETXID handler: wrap it
  // once, after the first runtime thread (sysmon, sched.h: sysmon_ensure).
  if (r == 0 && !g_setxid_wrapped.exchange(true, std::memory_order_acq_rel)) interpose_setxid_install_handler();
  return r;
}

long affinity_get_g(G* t, size_t size, cpu_set_t* set) { return g_getaffinity(t, size, set); }

int affinity_set_g(G* t, size_t size, const cpu_set_t* set) {
  if (int e = check_affinity(size, set)) return e;
  return ksched_change(t, [&](G* g) { set_mask_record(g, size, set); });
}

}  // namespace mnp

extern "C" {

MNP_EXPORT int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) noexcept {
  if (!runtime_up) {
    int r = real_pthread_create(thread, attr, fn, arg);
    if (r == 0) handle_register_native(*thread);
    return r;
  }
  GSpec spec{fn, arg, 0, static_cast<size_t>(-1), nullptr, false};
  sigset_t attr_mask;
  if (attr && pthread_attr_getsigmask_np(attr, &attr_mask) == 0) spec.sigmask = &attr_mask;
  if (attr) {
    const auto* a = reinterpret_cast<const AttrView*>(attr);
    spec.detached = (a->flags & kAttrDetached) != 0;
    spec.guard_size = a->guardsize;
    spec.stack_size = a->stacksize;
    if (a->flags & kAttrStackAddr) {
      if (a->stacksize < static_cast<size_t>(PTHREAD_STACK_MIN)) return EINVAL;
      spec.user_stack = static_cast<char*>(a->stackaddr) - a->stacksize;
    } else if (a->stacksize && a->stacksize < gmem_min_stack()) {
      return EINVAL;  // glibc: no room for TLS and 2 KiB of stack
    }
  }
  // Scheduling: the attribute's (checked as glibc's sched_setscheduler on
  // the new thread would) or the creator's; CPU affinity: checked only.
  G* cur = get_user_g();
  bool explicit_sched = false, attr_cpus = false;
  int policy = 0, prio = 0;
  cpu_set_t cs;
  if (attr) {
    int inherit = PTHREAD_INHERIT_SCHED;
    pthread_attr_getinheritsched(attr, &inherit);
    if (inherit == PTHREAD_EXPLICIT_SCHED) {
      struct sched_param sp = {};
      pthread_attr_getschedpolicy(attr, &policy);
      pthread_attr_getschedparam(attr, &sp);
      prio = sp.sched_priority;
      if (int e = check_sched(policy, &sp)) return e;
      explicit_sched = true;
    }
    // An attribute without a CPU set reads back as all ones: nothing to
    // check then (and no system call on the common path).
    if (pthread_attr_getaffinity_np(attr, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) != CPU_SETSIZE) {
      if (int e = check_affinity(sizeof cs, &cs)) return e;
      attr_cpus = true;
    }
  }
  G* gp;
  int r = newproc(spec, &gp);
  if (r != 0) return spec.user_stack ? EINVAL : r;
  // Scheduling attributes: the creator's, then the attribute's; the new G
  // applies what differs from the process's at its start (core/ksched.h).
  if (cur) ksched_copy(gp, cur);
  if (explicit_sched) {
    gp->sched_policy = policy;
    gp->sched_priority = prio;
  }
  if (attr_cpus) set_mask_record(gp, sizeof cs, &cs);
  ksched_rerank(gp);
  if (!ksched_is_default(gp)) ksched_mark(gp);
  if (cur) memcpy(gp->name, cur->name, sizeof gp->name);
  *thread = reinterpret_cast<pthread_t>(gp->tcb);
  // A real-time thread above its creator runs first natively: wait until
  // its M carries its policy (core/ksched.h, the start hand-shake).
  bool wait_start = cur && runtime_up && ksched_outranks(gp, cur);
  if (wait_start) ksched_start_arm(cur, gp);
  newproc_start(gp);
  if (wait_start) ksched_start_wait(cur);
  // A scheduling point, as natively a new thread gets the CPU soon: a G
  // that creates threads in a loop spends nearly all its time inside the
  // shim and glibc, where asynchronous preemption never stops it, so the
  // Gs it made waited for the whole loop (1,000 creates at 1 P: 30 ms mean
  // until a thread first ran, 1.1 ms natively on one CPU).
  if (cur) preempt_check();
  return 0;
}

MNP_EXPORT int pthread_join(pthread_t th, void** ret) {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) {
    // A thread made before the runtime was up: glibc waits in the kernel,
    // so give the P away meanwhile.
    r = handoff_block(real_pthread_join, th, ret);
    if (r == 0) handle_unregister_native(th);
    return r;
  }
  return r ? r : join_g(t, ret, false, CLOCK_REALTIME, nullptr);
}

MNP_EXPORT int pthread_tryjoin_np(pthread_t th, void** ret) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) {
    r = real_pthread_tryjoin_np(th, ret);
    if (r == 0) handle_unregister_native(th);
    return r;
  }
  return r ? r : join_g(t, ret, true, CLOCK_REALTIME, nullptr);
}

MNP_EXPORT int pthread_clockjoin_np(pthread_t th, void** ret, clockid_t clk, const struct timespec* abstime) {
  if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC) return EINVAL;  // glibc checks it first
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) {
    r = handoff_block(real_pthread_clockjoin_np, th, ret, clk, abstime);
    if (r == 0) handle_unregister_native(th);
    return r;
  }
  if (r) return r;
  return join_g(t, ret, false, clk, abstime);
}

MNP_EXPORT int pthread_timedjoin_np(pthread_t th, void** ret, const struct timespec* abstime) {
  return pthread_clockjoin_np(th, ret, CLOCK_REALTIME, abstime);
}

MNP_EXPORT int pthread_detach(pthread_t th) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) {
    r = real_pthread_detach(th);
    if (r == 0) handle_unregister_native(th);
    return r;
  }
  if (r) return r;
  for (;;) {
    uintptr_t w = t->join.load(std::memory_order_acquire);
    if (w == kJoinable) {
      if (t->join.compare_exchange_strong(w, kDetached, std::memory_order_acq_rel)) return 0;
    } else if (w == kExited) {
      // Finished already: nobody will join it, so free it now.
      if (t->join.compare_exchange_strong(w, kDetachedDone, std::memory_order_acq_rel)) {
        g_reap(t);
        return 0;
      }
    } else if (w == kJoined) {
      return ESRCH;  // as glibc for a joined thread's handle (sched.h)
    } else if (w == kDetached || w == kDetachedDone) {
      return EINVAL;
    } else {
      return 0;  // someone is joining it: glibc leaves it alone and succeeds
    }
  }
}

MNP_EXPORT void pthread_exit(void* value) {
  // glibc's own pthread_exit unwinds (cleanup handlers, C++ destructors) to
  // the outermost cancellation buffer, which for a G is its trampoline.
  real_pthread_exit(value);
  __builtin_unreachable();
}

MNP_EXPORT pthread_t pthread_self(void) noexcept {
  return reinterpret_cast<pthread_t>(arch_tcb_load_ptr<tcbo::kSelf>());  // header.self
}

MNP_EXPORT int pthread_equal(pthread_t a, pthread_t b) noexcept { return a == b; }

MNP_EXPORT int sched_yield(void) noexcept {
  if (runtime_up) {
    if (G* gp = get_user_g()) {
      // A real-time G: the kernel's yield, among the threads of its
      // priority (core/ksched.h); its P stays with it, unless sysmon ended
      // its slice (the real-time bandwidth): then it goes behind the
      // ordinary Gs, as a preempted one does. A change another thread made
      // to its attributes is applied first, as at any scheduling point.
      bool rt = false;
      if (MNP_UNLIKELY(gp->ks_rt.load(std::memory_order_relaxed))) {
        if (gp->ks_dirty.load(std::memory_order_acquire)) ksched_check_slow();
        rt = gp->ks_rt.load(std::memory_order_relaxed);
      }
      if (rt) {
        if (MNP_LIKELY(!gp->preempt.load(std::memory_order_relaxed)) || gp->syscall_depth != 0) {
          raw_syscall(SYS_sched_yield);  // cannot fail
        } else {
          ensure_p(gp);
          preempt_switch();
        }
      } else if (yield()) {
        // yield() switches to any G runnable here or queued on another P.
        // None: the process has nothing else to run, and the G goes on at
        // once (a yield loop waiting for a G running on another P sees it
        // act within a few of them), except on every kYieldIdleSyscall-th
        // such yield in a row, where the kernel thread yields as the thread
        // would natively: on a machine with more runnable threads than CPUs,
        // the M of the G it waits for may be waiting for this CPU, and a
        // loop that never yields it keeps it for the kernel's whole slice.
        gp->yield_idle = 0;
      } else if (++gp->yield_idle % kYieldIdleSyscall == 0) {
        raw_syscall(SYS_sched_yield);
      }
      // Handlers due on this G run here, as the kernel runs them at the
      // return of its sched_yield. A loop that yields until a handler sets
      // its flag spends nearly all its time in this code, where sysmon's
      // kick is ignored (core/poke.cpp): such a loop waited 46 s for a
      // pthread_kill at 2 Ps.
      if (MNP_UNLIKELY(sigpend_any()) && gp->m->locks == 0) sigpend_run(nullptr, nullptr);
      return 0;
    }
  }
  return static_cast<int>(raw_syscall(SYS_sched_yield));
}

// pthread.h redirects the name pthread_yield to sched_yield; old binaries
// still import the real symbol, so define it under its own assembler name.
MNP_EXPORT int mnp_pthread_yield(void) noexcept __asm__("pthread_yield");
MNP_EXPORT int mnp_pthread_yield(void) noexcept { return sched_yield(); }

MNP_EXPORT int pthread_getattr_np(pthread_t th, pthread_attr_t* attr) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0 || (r == 0 && t->is_main)) return real_pthread_getattr_np(th, attr);
  if (r) return r;
  pthread_attr_init(attr);
  uintptr_t w = t->join.load(std::memory_order_acquire);
  if (w == kDetached) pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setguardsize(attr, t->guard_size);
  pthread_attr_setstack(attr, t->stack_lo, t->stack_size);
  return 0;
}

// glibc checks the length first; a finished thread's /proc/self/task entry
// is gone (its tid is 0): ENOENT, in errno too.
MNP_EXPORT int pthread_setname_np(pthread_t th, const char* name) noexcept {
  size_t n = strlen(name);
  if (n >= 16) return ERANGE;  // TASK_COMM_LEN
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_setname_np(th, name);
  if (r) return r;
  if (g_gone(t)) return errno = ENOENT;
  if (t->is_main) {
    // The main thread's name is the process's name in ps/top: keep the
    // kernel's copy too (its task is the initial kernel thread).
    char path[64];
    proc_comm_path(path, sizeof path, static_cast<int>(t->fake_tid));
    int fd = static_cast<int>(raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_WRONLY | O_CLOEXEC));
    if (fd >= 0) {
      raw_syscall(SYS_write, fd, reinterpret_cast<long>(name), static_cast<long>(n));
      raw_syscall(SYS_close, fd);
    }
  }
  memcpy(t->name, name, n + 1);
  return 0;
}

MNP_EXPORT int pthread_getname_np(pthread_t th, char* buf, size_t len) noexcept {
  if (len < 16) return ERANGE;  // TASK_COMM_LEN, checked first
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_getname_np(th, buf, len);
  if (r) return r;
  if (g_gone(t)) return errno = ENOENT;
  char name[16];
  if (t->name[0]) {
    memcpy(name, t->name, sizeof name);
  } else {
    // Never named: like a new kernel thread, it carries the process's name.
    char path[64];
    proc_comm_path(path, sizeof path, static_cast<int>(main_g()->fake_tid));
    int fd = static_cast<int>(raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC));
    long n = fd >= 0 ? raw_syscall(SYS_read, fd, reinterpret_cast<long>(name), sizeof name - 1) : 0;
    if (fd >= 0) raw_syscall(SYS_close, fd);
    if (n < 0) n = 0;
    if (n > 0 && name[n - 1] == '\n') n--;
    name[n] = 0;
  }
  size_t n = strlen(name);
  if (len < n + 1) return ERANGE;
  memcpy(buf, name, n + 1);
  return 0;
}

MNP_EXPORT int pthread_getconcurrency(void) noexcept { return __atomic_load_n(&g_concurrency, __ATOMIC_RELAXED); }

MNP_EXPORT int pthread_setconcurrency(int level) noexcept {
  if (level < 0) return EINVAL;
  __atomic_store_n(&g_concurrency, level, __ATOMIC_RELAXED);
  return 0;
}

MNP_EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t* clk) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_getcpuclockid(th, clk);
  if (r) return r;
  // The id glibc makes from a thread's id; clock_gettime and friends
  // (interpose/cpuclock.cpp) read the G's own clock for it. A finished
  // thread has no id any more: ESRCH, as glibc answers.
  if (g_gone(t)) return ESRCH;
  *clk = g_clock_id(t->fake_tid);
  return 0;
}

// glibc 2.34's pthread_kill: its two internal signals (SIGCANCEL 32,
// SIGSETXID 33) are EINVAL; a thread that has exited (not yet joined) is
// still a valid id and the call succeeds without sending anything, whatever
// the signal; otherwise the kernel checks the number.
MNP_EXPORT int pthread_kill(pthread_t th, int sig) noexcept {
  if (sig == 32 || sig == 33) return EINVAL;
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_kill(th, sig);
  if (r) return r;
  if (t->status.load(std::memory_order_acquire) == kGDead) return 0;
  if (sig < 0 || sig >= 65) return EINVAL;
  return signal_g(t, sig);  // as tgkill of its id (interpose/tid.cpp): the handler runs on t
}

}  // extern "C"

// ---- scheduling parameters and CPU affinity of a G --------------------------
// Checked as the kernel would check them, recorded in the G and read back
// from the record; a record that differs from the process's defaults is
// applied to a kernel thread the G is wired to (core/ksched.h).

extern "C" {

MNP_EXPORT int pthread_setschedparam(pthread_t th, int policy, const struct sched_param* param) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_setschedparam(th, policy, param);
  if (r) return r;
  if (g_gone(t)) return ESRCH;
  if ((r = check_sched(policy, param))) return errno = r;  // glibc's failed sched_setscheduler sets errno
  int prio = param->sched_priority;
  return ksched_change(t, [&](G* g) {
    g->sched_policy = policy;
    g->sched_priority = prio;
  });
}

MNP_EXPORT int pthread_getschedparam(pthread_t th, int* policy, struct sched_param* param) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_getschedparam(th, policy, param);
  if (r) return r;
  if (g_gone(t)) return ESRCH;
  *policy = t->sched_policy;
  memset(param, 0, sizeof *param);
  param->sched_priority = t->sched_priority;
  return 0;
}

MNP_EXPORT int pthread_setschedprio(pthread_t th, int prio) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_setschedprio(th, prio);
  if (r) return r;
  if (g_gone(t)) return ESRCH;
  struct sched_param p = {};
  p.sched_priority = prio;
  if ((r = check_sched(t->sched_policy, &p))) return errno = r;  // as glibc's failed sched_setparam
  return ksched_change(t, [&](G* g) { g->sched_priority = prio; });
}

MNP_EXPORT int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t* set) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_getaffinity_np(th, size, set);
  if (r) return r;
  long n = g_getaffinity(t, size, set);
  return n < 0 ? static_cast<int>(-n) : 0;
}

MNP_EXPORT int pthread_setaffinity_np(pthread_t th, size_t size, const cpu_set_t* set) noexcept {
  G* t;
  int r = native_or_esrch(th, &t);
  if (r < 0) return real_pthread_setaffinity_np(th, size, set);
  if (r) return r;
  return affinity_set_g(t, size, set);
}

}  // extern "C"
