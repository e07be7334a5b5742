// interpose/tid.cpp — thread ids of Gs (docs/ARCHITECTURE.md, "Thread ids").
//
// Every G has an id of its own (G::fake_tid, core/gmem.h): gettid() and
// syscall(SYS_gettid) return it, and glibc's TCB holds it. The calls that
// take a thread id of this process accept it:
//   tgkill, tkill      the handler runs on that G (signal_g), blocked or
//                      running, with the EINTR its call owes the signal;
//   kill               a thread's id names its process, as the kernel's
//                      kill does for any thread's id: the process's signal;
//   sched_*affinity, sched_{get,set}{param,scheduler},
//   getpriority/setpriority(PRIO_PROCESS), nice
//                      the G's scheduling record (core/ksched.h), the same
//                      one pthread_setschedparam and pthread_setaffinity_np
//                      keep: writes are checked as the kernel checks them,
//                      recorded, and applied to a kernel thread the G is
//                      wired to; reads answer from the record. Id 0 is the
//                      calling G here;
//   sched_getattr, sched_setattr (through syscall(): glibc 2.36 has no
//                      wrappers) the same record, for the policy, the
//                      priority and nice;
//   sched_rr_get_interval, ioprio_get/ioprio_set (IOPRIO_WHO_PROCESS)
//                      answered for the kernel thread the caller runs on;
//                      ioprio writes are checked and not applied;
//   pidfd_open         no pidfd refers to a G: without PIDFD_THREAD the
//                      kernel's own answer for a thread that leads no thread
//                      group (asked about sysmon's thread), with it EINVAL,
//                      the answer of a kernel that lacks the flag.
// Both the glibc wrappers and syscall() (futex.cpp) come here. An id that is
// no live G's goes to the kernel untouched: the ids of finished Gs and
// made-up ids get the kernel's ESRCH (G ids lie above any pid_max), real
// threads (those made before the runtime was up) work as before. The main
// G's id is the pid, which is also the initial kernel thread's: it means
// the main G here, except to pidfd_open, where it means the process.
// Id 0 ("the calling thread") is left to the kernel (it means the M),
// except for the scheduling record above.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "core/gmem.h"
#include "core/ksched.h"
#include "core/sched.h"
#include "core/sigpend.h"
#include "core/tcb.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

constexpr long kNotOurs = LONG_MIN;
constexpr unsigned kPidfdThread = O_EXCL;  // linux/pidfd.h
constexpr int kIoprioWhoProcess = 1;
// The kernel's struct sched_attr and its flags (linux/sched/types.h and
// linux/sched.h clash with glibc's <sched.h>).
struct SchedAttr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
};
constexpr uint32_t kSchedAttrSizeVer0 = 48;
constexpr uint64_t kSchedFlagResetOnFork = 0x01, kSchedFlagKeepPolicy = 0x08, kSchedFlagKeepParams = 0x10,
                   kSchedFlagAll = 0x7f;

long fail(long neg_errno) {
  errno = static_cast<int>(-neg_errno);
  return -1;
}

// Runs fn(G*) -> long for the live G whose id is tid (the caller itself
// without a lock; any other under the handle table's lock, see
// gmem_with_tid). kNotOurs when there is none.
template <typename Fn>
long on_g(long tid, Fn fn) {
  if (!runtime_up || tid <= 0 || tid > UINT32_MAX) return kNotOurs;
  if (G* cur = get_user_g(); cur && cur->fake_tid == static_cast<uint32_t>(tid)) return fn(cur);
  long r = kNotOurs;
  gmem_with_tid(static_cast<uint32_t>(tid), [&](G* t) { r = fn(t); });
  return r;
}

// As on_g, and id 0 (the calling thread) is the calling G: the calls
// about scheduling attributes answer from the G's own record
// (core/ksched.h), not from whichever M it runs on.
template <typename Fn>
long on_g_or_self(long tid, Fn fn) {
  if (tid == 0 && runtime_up)
    if (G* cur = get_user_g()) return fn(cur);
  return on_g(tid, fn);
}

pthread_t handle_of(G* t) { return reinterpret_cast<pthread_t>(t->tcb); }
long neg(int err) { return err ? -static_cast<long>(err) : 0; }

// tgkill (tgid >= 0) and tkill (tgid < 0) of a G's id: 0 or -errno, or
// kNotOurs.
long kill_tid(long tgid, long tid, long sig) {
  if (sig < 0 || sig > 64) return kNotOurs;  // the kernel's EINVAL
  if (tgid >= 0 && tgid != raw_syscall(SYS_getpid)) return kNotOurs;
  // Under the handle table's lock for another G, so it cannot go away: the
  // send only fills its pending slot and kicks or wakes it (a handler runs
  // here only for the caller itself, which holds no lock).
  int err = 0;
  long r = on_g(tid, [&](G* t) {
    err = sig == 0 ? 0 : sig_send_to_g(t, static_cast<int>(sig));
    return 0L;
  });
  if (r == kNotOurs) return r;
  return neg(err);
}

// kill of a G's id: the kernel sends a signal given any thread's id to
// that thread's process. Only ids in the G range are looked up (the usual
// kill of a pid costs a compare).
long kill_g(long pid, long sig) {
  if (pid < static_cast<long>(kFakeTidBase) || pid > UINT32_MAX) return kNotOurs;
  long r = on_g(pid, [&](G*) { return 0L; });
  if (r == kNotOurs) return r;
  return raw_syscall(SYS_kill, raw_syscall(SYS_getpid), sig);
}

long getaffinity_g(long tid, long size, long set) {
  return on_g_or_self(
      tid, [&](G* t) { return affinity_get_g(t, static_cast<size_t>(size), reinterpret_cast<cpu_set_t*>(set)); });
}
long setaffinity_g(long tid, long size, long set) {
  return on_g_or_self(tid, [&](G* t) {
    return neg(affinity_set_g(t, static_cast<size_t>(size), reinterpret_cast<const cpu_set_t*>(set)));
  });
}
long getparam_g(long tid, long param) {
  return on_g_or_self(tid, [&](G* t) {
    if (!param) return -long{EINVAL};
    int policy;
    return neg(pthread_getschedparam(handle_of(t), &policy, reinterpret_cast<struct sched_param*>(param)));
  });
}
long setparam_g(long tid, long param) {
  return on_g_or_self(tid, [&](G* t) {
    if (!param) return -long{EINVAL};
    return neg(pthread_setschedprio(handle_of(t), reinterpret_cast<const struct sched_param*>(param)->sched_priority));
  });
}
long getscheduler_g(long tid) {
  return on_g_or_self(tid, [&](G* t) {
    int policy;
    struct sched_param p;
    int e = pthread_getschedparam(handle_of(t), &policy, &p);
    return e ? neg(e) : policy;
  });
}
long setscheduler_g(long tid, long policy, long param) {
  return on_g_or_self(tid, [&](G* t) {
    if (!param) return -long{EINVAL};
    return neg(pthread_setschedparam(handle_of(t), static_cast<int>(policy) & ~SCHED_RESET_ON_FORK,
                                     reinterpret_cast<const struct sched_param*>(param)));
  });
}
long rr_interval_g(long tid, long ts) {
  return on_g(tid, [&](G*) { return raw_syscall(SYS_sched_rr_get_interval, 0, ts); });
}
// The kernel's getpriority returns 20 - nice.
long getpriority_g(long which, long who) {
  if (which != PRIO_PROCESS) return kNotOurs;
  return on_g_or_self(who, [&](G* t) { return 20L - t->sched_nice; });
}
// Lowering nice needs CAP_SYS_NICE or room under RLIMIT_NICE.
long set_nice(G* t, long nice) {
  int n = static_cast<int>(nice < -20 ? -20 : nice > 19 ? 19 : nice);
  bool allowed = n >= t->sched_nice || raw_syscall(SYS_geteuid) == 0;
  struct rlimit rl;
  if (!allowed && raw_syscall(SYS_prlimit64, 0, RLIMIT_NICE, 0, reinterpret_cast<long>(&rl)) == 0 &&
      static_cast<rlim_t>(20 - n) <= rl.rlim_cur)
    allowed = true;
  if (!allowed) return -long{EACCES};
  return neg(ksched_change(t, [&](G* g) { g->sched_nice = n; }));
}
long setpriority_g(long which, long who, long nice) {
  if (which != PRIO_PROCESS) return kNotOurs;
  return on_g_or_self(who, [&](G* t) { return set_nice(t, nice); });
}
// sched_getattr: the kernel's answer for the caller's M (the deadline and
// utilisation fields, which the record does not keep), with the G's policy,
// priority and nice. GLib copies a creator's settings into each pool
// thread with these two calls, and printed a critical on every failure.
long getattr_g(long tid, long attr, long size, long flags) {
  return on_g_or_self(tid, [&](G* t) {
    auto* a = reinterpret_cast<SchedAttr*>(attr);
    if (!a || flags != 0 || size < kSchedAttrSizeVer0 || size > 4096) return -long{EINVAL};
    if (long r = raw_syscall(SYS_sched_getattr, 0, attr, size, 0); r < 0) return r;
    int policy;
    struct sched_param p;
    if (int e = pthread_getschedparam(handle_of(t), &policy, &p)) return neg(e);
    a->policy = static_cast<uint32_t>(policy);
    a->priority = static_cast<uint32_t>(p.sched_priority);
    a->nice = t->sched_nice;
    a->flags &= ~kSchedFlagResetOnFork;  // the M's, not the G's
    return 0L;
  });
}
// sched_setattr: checked as the kernel checks it, into the G's record.
// Utilisation clamps are accepted and not kept (hints the kernel gives a
// task, which a G is not).
long setattr_g(long tid, long attr, long flags) {
  return on_g_or_self(tid, [&](G* t) {
    const auto* a = reinterpret_cast<const SchedAttr*>(attr);
    if (!a || flags != 0) return -long{EINVAL};
    if (a->size != 0 && (a->size < kSchedAttrSizeVer0 || a->size > 4096)) return -long{E2BIG};
    if (a->flags & ~kSchedFlagAll) return -long{EINVAL};
    int policy;
    struct sched_param p;
    if (int e = pthread_getschedparam(handle_of(t), &policy, &p)) return neg(e);
    const int old_policy = policy;
    const struct sched_param old_p = p;
    bool keep_params = a->flags & kSchedFlagKeepParams;
    if (!(a->flags & kSchedFlagKeepPolicy)) policy = static_cast<int>(a->policy);
    if (!keep_params) p.sched_priority = static_cast<int>(a->priority);
    // The kernel changes nothing on any error: the policy first (checked
    // there), and back to the old one if nice is refused (EPERM here, where
    // setpriority says EACCES).
    if (int e = pthread_setschedparam(handle_of(t), policy, &p)) return neg(e);
    bool fair = policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE;
    if (!keep_params && fair)
      if (long r = set_nice(t, a->nice); r < 0) {
        pthread_setschedparam(handle_of(t), old_policy, &old_p);
        return r == -EACCES ? -long{EPERM} : r;
      }
    return 0L;
  });
}
long ioprio_get_g(long which, long who) {
  if (which != kIoprioWhoProcess) return kNotOurs;
  return on_g(who, [&](G*) { return raw_syscall(SYS_ioprio_get, kIoprioWhoProcess, 0); });
}
long ioprio_set_g(long which, long who, long prio) {
  if (which != kIoprioWhoProcess) return kNotOurs;
  return on_g(who, [&](G*) {
    long cls = (prio >> 13) & 7;
    if (cls > 3) return -long{EINVAL};
    if (cls == 1 && raw_syscall(SYS_geteuid) != 0) return -long{EPERM};  // real-time class
    return 0L;
  });
}
long pidfd_open_g(long tid, long flags) {
  if (tid == raw_syscall(SYS_getpid)) return kNotOurs;  // the process
  return on_g(tid, [&](G*) {
    if (static_cast<unsigned long>(flags) & kPidfdThread) return -long{EINVAL};
    int probe = sysmon_tid();
    long r = probe > 0 ? raw_syscall(SYS_pidfd_open, probe, flags) : -long{EINVAL};
    if (r >= 0) {
      raw_syscall(SYS_close, r);
      r = -long{EINVAL};
    }
    return r;
  });
}

long as_libc(long r) { return r < 0 ? fail(r) : r; }

}  // namespace

namespace mnp {

int signal_g(G* t, int sig) { return sig == 0 ? 0 : sig_send_to_g(t, sig); }

bool tid_syscall(long nr, const long* a, long* ret) {
  long r;
  switch (nr) {
    case SYS_gettid: {
      G* g = get_user_g();
      if (!g) return false;
      *ret = g->fake_tid;
      return true;
    }
    case SYS_set_tid_address: {
      // A G has no kernel task whose clear_child_tid could be set: setting
      // the M's would let a later G's exit, or the M's, write into this
      // one's memory. The G keeps the address and its exit clears it
      // (g_exit_current); the result is the caller's id, as the kernel's.
      G* g = get_user_g();
      if (!g) return false;
      g->clear_tid = reinterpret_cast<std::atomic<uint32_t>*>(a[0]);
      *ret = g->fake_tid;
      return true;
    }
    case SYS_tgkill:
      r = kill_tid(a[0] < 0 ? LONG_MAX : a[0], a[1], a[2]);
      break;
    case SYS_tkill:
      r = kill_tid(-1, a[0], a[1]);
      break;
    case SYS_kill:
      r = kill_g(a[0], a[1]);
      break;
    case SYS_sched_getaffinity:
      r = getaffinity_g(a[0], a[1], a[2]);
      break;
    case SYS_sched_setaffinity:
      r = setaffinity_g(a[0], a[1], a[2]);
      break;
    case SYS_sched_getparam:
      r = getparam_g(a[0], a[1]);
      break;
    case SYS_sched_setparam:
      r = setparam_g(a[0], a[1]);
      break;
    case SYS_sched_getscheduler:
      r = getscheduler_g(a[0]);
      break;
    case SYS_sched_setscheduler:
      r = setscheduler_g(a[0], a[1], a[2]);
      break;
    case SYS_sched_getattr:
      r = getattr_g(a[0], a[1], a[2], a[3]);
      break;
    case SYS_sched_setattr:
      r = setattr_g(a[0], a[1], a[2]);
      break;
    case SYS_sched_rr_get_interval:
      r = rr_interval_g(a[0], a[1]);
      break;
    case SYS_getpriority:
      r = getpriority_g(a[0], a[1]);
      break;  // 20 - nice, as the kernel's
    case SYS_setpriority:
      r = setpriority_g(a[0], a[1], a[2]);
      break;
    case SYS_ioprio_get:
      r = ioprio_get_g(a[0], a[1]);
      break;
    case SYS_ioprio_set:
      r = ioprio_set_g(a[0], a[1], a[2]);
      break;
    case SYS_pidfd_open:
      r = pidfd_open_g(a[0], a[1]);
      break;
    default:
      return false;
  }
  if (r == kNotOurs) return false;
  *ret = as_libc(r);
  return true;
}

}  // namespace mnp

namespace {

// The wrappers' own results: 0 or -1 with errno.
int zero_or_fail(long r) { return r < 0 ? static_cast<int>(fail(r)) : 0; }
}  // namespace

extern "C" {

MNP_EXPORT pid_t gettid(void) noexcept {
  G* g = get_user_g();
  return g ? static_cast<pid_t>(g->fake_tid) : static_cast<pid_t>(raw_syscall(SYS_gettid));
}

MNP_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig) {
  long r = kill_tid(tgid < 0 ? LONG_MAX : tgid, tid, sig);
  return r == kNotOurs ? real_tgkill(tgid, tid, sig) : zero_or_fail(r);
}

MNP_EXPORT int kill(pid_t pid, int sig) noexcept {
  long r = kill_g(pid, sig);
  return r == kNotOurs ? real_kill(pid, sig) : zero_or_fail(r);
}

MNP_EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t* set) noexcept {
  long r = getaffinity_g(pid, static_cast<long>(size), reinterpret_cast<long>(set));
  if (r == kNotOurs) return real_sched_getaffinity(pid, size, set);
  if (r < 0) return static_cast<int>(fail(r));
  // As glibc's wrapper: the bytes the kernel did not fill are zeroed.
  if (static_cast<size_t>(r) < size) memset(reinterpret_cast<char*>(set) + r, 0, size - static_cast<size_t>(r));
  return 0;
}

MNP_EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t* set) noexcept {
  long r = setaffinity_g(pid, static_cast<long>(size), reinterpret_cast<long>(set));
  return r == kNotOurs ? real_sched_setaffinity(pid, size, set) : zero_or_fail(r);
}

MNP_EXPORT int sched_getparam(pid_t pid, struct sched_param* p) noexcept {
  long r = getparam_g(pid, reinterpret_cast<long>(p));
  return r == kNotOurs ? real_sched_getparam(pid, p) : zero_or_fail(r);
}

MNP_EXPORT int sched_setparam(pid_t pid, const struct sched_param* p) noexcept {
  long r = setparam_g(pid, reinterpret_cast<long>(p));
  return r == kNotOurs ? real_sched_setparam(pid, p) : zero_or_fail(r);
}

MNP_EXPORT int sched_getscheduler(pid_t pid) noexcept {
  long r = getscheduler_g(pid);
  return r == kNotOurs ? real_sched_getscheduler(pid) : static_cast<int>(as_libc(r));
}

MNP_EXPORT int sched_setscheduler(pid_t pid, int policy, const struct sched_param* p) noexcept {
  long r = setscheduler_g(pid, policy, reinterpret_cast<long>(p));
  // The kernel returns 0 on success; glibc passes that on.
  return r == kNotOurs ? real_sched_setscheduler(pid, policy, p) : zero_or_fail(r);
}

MNP_EXPORT int sched_rr_get_interval(pid_t pid, struct timespec* ts) noexcept {
  long r = rr_interval_g(pid, reinterpret_cast<long>(ts));
  return r == kNotOurs ? real_sched_rr_get_interval(pid, ts) : zero_or_fail(r);
}

MNP_EXPORT int getpriority(__priority_which_t which, id_t who) noexcept {
  long r = getpriority_g(which, static_cast<long>(who));
  if (r == kNotOurs) return real_getpriority(which, who);
  return r < 0 ? static_cast<int>(fail(r)) : static_cast<int>(20 - r);
}

MNP_EXPORT int setpriority(__priority_which_t which, id_t who, int prio) noexcept {
  long r = setpriority_g(which, static_cast<long>(who), prio);
  return r == kNotOurs ? real_setpriority(which, who, prio) : zero_or_fail(r);
}

// glibc's nice calls its internal setpriority, which the shim does not see:
// on a G it would set the M's nice value, unwired, for every G the M runs
// next, and getpriority would not report it. The same steps on the G's
// record: its value plus inc (clamped as the kernel clamps), EPERM where
// setpriority refuses with EACCES, the new value as the result and errno
// untouched on success.
MNP_EXPORT int nice(int inc) noexcept {
  long cur = getpriority_g(PRIO_PROCESS, 0);  // 20 - nice
  if (cur == kNotOurs) return real_nice(inc);
  long r = setpriority_g(PRIO_PROCESS, 0, 20 - cur + inc);
  if (r < 0) {
    errno = r == -long{EACCES} ? EPERM : static_cast<int>(-r);
    return -1;
  }
  return static_cast<int>(20 - getpriority_g(PRIO_PROCESS, 0));
}

MNP_EXPORT int pidfd_open(pid_t pid, unsigned flags) noexcept {
  long r = pidfd_open_g(pid, flags);
  return r == kNotOurs ? real_pidfd_open(pid, flags) : static_cast<int>(as_libc(r));
}

}  // extern "C"
