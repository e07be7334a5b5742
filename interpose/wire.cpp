// interpose/wire.cpp — calls that leave state on the calling kernel thread,
// so their G is wired to its M (docs/ARCHITECTURE.md, "Wiring").
//
// The kernel keeps some state per task, not per process: who traces whom,
// namespaces, capabilities, fs ids, personality, seccomp filters, the
// comm name, the parent-death signal, an io_uring that only its creating
// task may submit to and registered ring fds (made through syscall():
// liburing's own system call instructions are not seen). (The alternate
// signal stack is per task too; it moves with its G instead, below and
// core/altstack.h.) A G that
// sets any of it and then runs on another M would lose it (and the M would
// pass it on to every other G it runs). So the G is wired first (it runs
// only on this M from then on, and the M runs only it) and, for state that
// never goes back, for the rest of its life: the M then ends with the G, as
// the kernel thread would natively. Wiring is taken before the call, so the
// state lands on the M the G stays on.
//
// fork: the child's PTRACE_TRACEME names the thread that forked it as its
// tracer, and its PR_SET_PDEATHSIG fires when that thread exits. The forking
// G stays wired until it has reaped as many children as it forked (a count:
// children reaped by another G keep it wired until it exits). A G that never
// forks, and one whose children are all reaped, are not affected.
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <new>

#include "core/altstack.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

inline G* wiring_g() { return running_user_g(); }

// prctl options whose setting lives in the calling task (kernel/sys.c,
// security/commoncap.c): the parent-death signal, the name, seccomp,
// no_new_privs, keepcaps, the bounding and ambient sets, securebits, timer
// slack, the TSC and machine-check modes, the I/O flusher flag, speculation
// control, syscall user dispatch. The others (dumpable, subreaper, THP,
// the mm and VMA settings, ptracer) are the process's and need no wiring.
// capget/capset name their thread in the header: 0 or the caller's own
// id. A G's own id (gettid(); the pid for the main G) is no kernel thread
// the M knows as itself (capset: EPERM; capget: another thread's sets), so
// it is passed as 0, on a copy of the header whose version the kernel may
// rewrite (version negotiation) and which goes back to the caller's.
struct CapHeader {
  uint32_t version;
  int pid;
};
template <typename F>
long own_caps(F call, void* hdr) {
  G* g = get_user_g();
  auto* h = static_cast<CapHeader*>(hdr);
  if (!g || !runtime_up || !h || h->pid == 0 || static_cast<uint32_t>(h->pid) != g->fake_tid) return call(hdr);
  CapHeader copy = *h;
  copy.pid = 0;
  long r = call(&copy);
  int e = errno;
  h->version = copy.version;
  errno = e;
  return r;
}

// The credential subset: capabilities and the bits that govern them.
bool prctl_creds(int op) {
  return op == PR_SET_KEEPCAPS || op == PR_CAPBSET_DROP || op == PR_SET_SECUREBITS || op == PR_CAP_AMBIENT;
}

// The per-thread prctl settings that a new thread does not inherit: the
// kernel clears them in every task it creates.
bool prctl_not_inherited(int op) { return op == PR_SET_PDEATHSIG || op == PR_SET_SYSCALL_USER_DISPATCH; }

bool prctl_per_thread(int op) {
  switch (op) {
    case PR_SET_PDEATHSIG:
    case PR_SET_NAME:
    case PR_SET_SECCOMP:
    case PR_SET_NO_NEW_PRIVS:
    case PR_SET_KEEPCAPS:
    case PR_CAPBSET_DROP:
    case PR_SET_SECUREBITS:
    case PR_CAP_AMBIENT:
    case PR_SET_TIMERSLACK:
    case PR_SET_TSC:
    case PR_MCE_KILL:
    case PR_SET_IO_FLUSHER:
    case PR_SET_SPECULATION_CTRL:
    case PR_SET_SYSCALL_USER_DISPATCH:
      return true;
    default:
      return false;
  }
}

// Whether a seccomp request can put a filter (or strict mode) on: a
// filter request without a program is refused by the kernel with EFAULT,
// and libseccomp asks so to learn which flags the kernel knows (qemu does
// at start-up, filters or not). Taken for a filter, it turned asynchronous
// preemption off for good, and qemu's vCPU threads, which run generated
// code and never call the runtime, kept both Ps from its main loop: the
// guest never booted.
bool seccomp_installs(long mode, long filter) {
  return mode == SECCOMP_SET_MODE_STRICT || (mode == SECCOMP_SET_MODE_FILTER && filter != 0);
}

// The wiring a prctl needs, for the wrapper and for syscall() alike.
// PR_SET_SECCOMP takes the mode (SECCOMP_MODE_STRICT, _FILTER) and the
// filter in arg2 and arg3.
void wire_for_prctl(int op, unsigned long a2, unsigned long a3) {
  if (op == PR_SET_SECCOMP) {
    long mode = a2 == SECCOMP_MODE_STRICT   ? SECCOMP_SET_MODE_STRICT
                : a2 == SECCOMP_MODE_FILTER ? SECCOMP_SET_MODE_FILTER
                                            : -1;
    if (!seccomp_installs(mode, static_cast<long>(a3))) return;
    seccomp_filter_coming();
  }
  if (prctl_per_thread(op)) wire_for_life(prctl_creds(op), !prctl_not_inherited(op));
}

// A wait returned with a child gone for good: one fewer to stay wired for.
void child_reaped() {
  G* gp = wiring_g();
  if (!gp || gp->wired_children == 0) return;
  gp->wired_children--;
  wire_drop();
}

// seccomp(2) operations that install state on the calling thread only
// (with TSYNC a filter goes to every thread, i.e. every M).
bool seccomp_per_thread(long op, long flags) {
  if (op == SECCOMP_SET_MODE_STRICT) return true;
  return op == SECCOMP_SET_MODE_FILTER && !(flags & SECCOMP_FILTER_FLAG_TSYNC);
}
}  // namespace

namespace {
// A fork child mostly execs next. The exec functions' real definitions are
// found here, in the parent, once: found in each child, the look-up and the
// page faults it takes there (the loader's code, the copy-on-write of what
// it writes) cost every child again.
void find_exec_family() {
  (void)real_execve.get();
  (void)real_execv.get();
  (void)real_execvp.get();
  (void)real_execvpe.get();
  (void)real_fexecve.get();
  (void)real_execveat.get();
}
}  // namespace

extern "C" MNP_EXPORT MNP_STARTUP pid_t fork() noexcept {
  find_exec_family();
  G* gp = wiring_g();
  if (!gp) return real_fork();
  wire_leave_m0(gp);
  wire_take();
  pid_t pid = real_fork();
  if (pid > 0) {
    gp->wired_children++;
  } else {
    int e = errno;
    if (pid == 0) {
      wire_after_fork_child(gp);
      altstack_after_fork(gp);
    }
    wire_drop();
    errno = e;
  }
  return pid;
}

// glibc's declaration names an enum before the `...`; on x86_64 it is
// passed as an int, so va_start works on it (clang warns all the same).
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wvarargs"
#endif
extern "C" MNP_EXPORT long ptrace(enum __ptrace_request req, ...) noexcept {
  va_list ap;
  va_start(ap, req);
  long pid = va_arg(ap, long);
  void* addr = va_arg(ap, void*);
  void* data = va_arg(ap, void*);
  va_end(ap);
  // The tracer is a kernel thread, and so is a tracee (PTRACE_TRACEME):
  // every request must come from the same one.
  wire_for_life(false, false);
  return real_ptrace(req, pid, addr, data);
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

extern "C" MNP_EXPORT int prctl(int op, ...) noexcept {
  va_list ap;
  va_start(ap, op);
  unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
  unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
  va_end(ap);
  wire_for_prctl(op, a2, a3);
  return real_prctl(op, a2, a3, a4, a5);
}

namespace {
// unshare and setns, for the wrappers and for syscall() alike. A new PID
// namespace for the caller's children (`pidns`: it may be one) leaves its
// thread unable to make a thread (clone with CLONE_THREAD: EINVAL), so the
// runtime's sysmon, which makes the Ms of wired Gs, must exist first, even
// in a process that is still one thread (wire_for_life).
void wire_for_ns(bool pidns) {
  if (pidns && runtime_up && get_user_g()) sysmon_ensure();
  wire_for_life();
}
}  // namespace

extern "C" MNP_EXPORT int unshare(int flags) noexcept {
  wire_for_ns(flags & CLONE_NEWPID);
  return real_unshare(flags);
}

extern "C" MNP_EXPORT int setns(int fd, int nstype) noexcept {
  wire_for_ns(nstype == 0 || nstype == CLONE_NEWPID);
  return real_setns(fd, nstype);
}

extern "C" MNP_EXPORT int capset(void* hdr, void* data) noexcept {
  wire_for_life(true);
  return own_caps([&](void* h) { return static_cast<long>(real_capset(h, data)); }, hdr);
}

extern "C" MNP_EXPORT int capget(void* hdr, void* data) noexcept {
  return own_caps([&](void* h) { return static_cast<long>(real_capget(h, data)); }, hdr);
}

extern "C" MNP_EXPORT int setfsuid(uid_t uid) noexcept {
  wire_for_life(true);
  return real_setfsuid(uid);
}

extern "C" MNP_EXPORT int setfsgid(gid_t gid) noexcept {
  wire_for_life(true);
  return real_setfsgid(gid);
}

extern "C" MNP_EXPORT int personality(unsigned long persona) noexcept {
  if (persona != 0xffffffffUL) wire_for_life();  // 0xffffffff only asks
  return real_personality(persona);
}

namespace {
// sigaltstack on a G (core/altstack.h). The kernel's alternate stack is
// per thread: one the G gives the kernel is put on every M that runs it
// (G::own_altstack), and taken off when it switches away. An alternate
// stack that several threads enable (varnishd gives every thread the same
// one, for its crash report) is natively harmless while only fatal
// signals use it. The runtime's signal is SA_ONSTACK (its frame must not
// land at a JIT's %rsp, core/poke.cpp), so the kernel would run its
// handler on that one region on several Ms at once (varnishd's workers
// died of SIGSEGV and failed asserts within seconds). So a region is
// given to the kernel for one live G only (altstack_claim); another G
// that enables it keeps it in its own view (G::altstack_virtual): the
// program reads it back, its threads get none, and handlers run on the
// G's own stack.

void fill_view(const G* gp, stack_t* out) {
  out->ss_sp = reinterpret_cast<void*>(gp->altstack_lo);
  out->ss_size = gp->altstack_hi - gp->altstack_lo;
  out->ss_flags = 0;  // the kernel never runs a handler on it for this G
}

// The G's record after the kernel took ss (or a disable) on mp's thread.
void note_kernel_altstack(G* gp, M* mp, const stack_t* ss) {
  if (gp->own_altstack && (ss->ss_flags & SS_DISABLE || reinterpret_cast<uintptr_t>(ss->ss_sp) != gp->altstack_lo))
    altstack_unclaim(gp, gp->altstack_lo);
  gp->altstack_virtual = false;
  if (ss->ss_flags & SS_DISABLE) {
    gp->own_altstack = false;
    gp->altstack_lo = gp->altstack_hi = 0;
    gp->altstack_flags = 0;
  } else {
    gp->own_altstack = true;
    gp->altstack_lo = reinterpret_cast<uintptr_t>(ss->ss_sp);
    gp->altstack_hi = gp->altstack_lo + ss->ss_size;
    gp->altstack_flags = ss->ss_flags & kSsAutodisarm;
  }
  mp->alt_lo = gp->own_altstack ? gp->altstack_lo : 0;
  mp->alt_hi = gp->own_altstack ? gp->altstack_hi : 0;
}

// real(ss, old) is the libc function or the system call (returning
// -1/errno either way). Held on its M (m_lock_enter, core/futex.h) from
// the call to the record: a handler of the program's that parks the G
// meanwhile would move it to another M.
template <typename Real>
int altstack_call(const stack_t* ss, stack_t* old, Real real) {
  G* gp = wiring_g();
  if (!gp) return real(ss, old);
  if (!ss) {  // a query: this G's own fields, which only it writes
    if (!gp->altstack_virtual) return real(ss, old);
    if (old) fill_view(gp, old);
    return 0;
  }
  bool enable = !(ss->ss_flags & SS_DISABLE);
  auto lo = reinterpret_cast<uintptr_t>(ss->ss_sp);
  if (!enable || altstack_claim(gp, lo)) {
    // A view-only stack is no kernel state: the kernel has none for this
    // G, and the old one the program gets is the view.
    bool was_virtual = gp->altstack_virtual;
    stack_t was;
    if (was_virtual) fill_view(gp, &was);
    m_lock_enter();
    int r = real(ss, was_virtual ? nullptr : old);
    int e = errno;
    if (r == 0) note_kernel_altstack(gp, gp->m, ss);
    else if (enable && !(gp->own_altstack && gp->altstack_lo == lo)) altstack_unclaim(gp, lo);
    m_lock_exit();
    if (r == 0 && was_virtual && old) *old = was;
    errno = e;
    return r;
  }
  // Another live G gave the kernel this region: into the view, checked as
  // the kernel checks.
  if ((ss->ss_flags & ~kSsAutodisarm) != 0 || ss->ss_size < static_cast<size_t>(MINSIGSTKSZ)) {
    errno = (ss->ss_flags & ~kSsAutodisarm) != 0 ? EINVAL : ENOMEM;
    return -1;
  }
  stack_t was;
  if (gp->altstack_virtual) {
    fill_view(gp, &was);
  } else if (real(nullptr, &was) != 0) {
    return -1;
  }
  if (gp->own_altstack) {
    // Its own stack, given to the kernel before: taken back (EPERM while
    // on it).
    stack_t off = {nullptr, SS_DISABLE, 0};
    m_lock_enter();
    int r = real(&off, nullptr);
    if (r == 0) note_kernel_altstack(gp, gp->m, &off);
    m_lock_exit();
    if (r != 0) return -1;
  }
  gp->altstack_virtual = true;
  gp->altstack_lo = lo;
  gp->altstack_hi = lo + ss->ss_size;
  if (old) *old = was;
  return 0;
}
}  // namespace

extern "C" MNP_EXPORT int sigaltstack(const stack_t* __restrict ss, stack_t* __restrict old) noexcept {
  auto* fn = real_sigaltstack.get();  // found before the lock (a first use looks it up with dlsym)
  return altstack_call(ss, old, [fn](const stack_t* s, stack_t* o) { return fn(s, o); });
}

namespace mnp {
bool wire_syscall(long nr, const long* a, long* ret) {
  switch (nr) {
    case SYS_ptrace:
      wire_for_life(false, false);
      return false;
    case SYS_unshare:
      wire_for_ns(a[0] & CLONE_NEWPID);
      return false;
    case SYS_setns:
      wire_for_ns(a[1] == 0 || a[1] == CLONE_NEWPID);
      return false;
    case SYS_capset:
      wire_for_life(true);
      *ret = own_caps([&](void* h) { return real_syscall(nr, reinterpret_cast<long>(h), a[1]); },
                      reinterpret_cast<void*>(a[0]));
      return true;
    case SYS_capget:
      *ret = own_caps([&](void* h) { return real_syscall(nr, reinterpret_cast<long>(h), a[1]); },
                      reinterpret_cast<void*>(a[0]));
      return true;
    case SYS_setfsuid:
    case SYS_setfsgid:
      wire_for_life(true);
      return false;
    case SYS_personality:
      if (static_cast<unsigned long>(a[0]) != 0xffffffffUL) wire_for_life();
      return false;
    case SYS_prctl:
      wire_for_prctl(static_cast<int>(a[0]), static_cast<unsigned long>(a[1]), static_cast<unsigned long>(a[2]));
      return false;
    case SYS_seccomp:
      if (!seccomp_installs(a[0], a[2])) return false;
      seccomp_filter_coming();
      if (seccomp_per_thread(a[0], a[1])) wire_for_life();
      return false;
    case SYS_io_uring_setup:
      // A ring only its creating task may submit to: io_uring_enter from
      // another kernel thread fails with EEXIST (fio ended its jobs early).
      if (a[1] && (reinterpret_cast<const io_uring_params*>(a[1])->flags &
                   (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)))
        wire_for_life();
      return false;
    case SYS_io_uring_register:
      // The table is the calling task's. The opcode may carry
      // IORING_REGISTER_USE_REGISTERED_RING (1 << 31, Linux 6.3; not in
      // Debian 12's headers).
      if ((static_cast<uint32_t>(a[1]) & ~(1u << 31)) == IORING_REGISTER_RING_FDS) wire_for_life();
      return false;
    case SYS_sigaltstack:
      *ret = altstack_call(
          reinterpret_cast<const stack_t*>(a[0]), reinterpret_cast<stack_t*>(a[1]), [nr](const stack_t* s, stack_t* o) {
            return static_cast<int>(real_syscall(nr, reinterpret_cast<long>(s), reinterpret_cast<long>(o)));
          });
      return true;
    default:
      return false;
  }
}

void wire_note_wait(pid_t r, const int* status) {
  if (r > 0 && status && (WIFEXITED(*status) || WIFSIGNALED(*status))) child_reaped();
}

// One the initial thread enabled before the runtime was up (a
// constructor's, ASan's) is the main G's, or the Gs M0 runs would see it
// as theirs.
MNP_STARTUP void wire_adopt_start_altstack() {
  G* gp = wiring_g();
  stack_t ss;
  if (!gp || raw_syscall(SYS_sigaltstack, 0, reinterpret_cast<long>(&ss)) != 0 || (ss.ss_flags & SS_DISABLE)) return;
  if (!altstack_claim(gp, reinterpret_cast<uintptr_t>(ss.ss_sp))) return;  // no memory for the table: left alone
  m_lock_enter();
  note_kernel_altstack(gp, gp->m, &ss);
  m_lock_exit();
}

void wire_note_waitid(int r, const siginfo_t* si, int options) {
  if (r != 0 || !si || (options & WNOWAIT) || si->si_pid == 0) return;
  if (si->si_code == CLD_EXITED || si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED) child_reaped();
}
}  // namespace mnp
