// core/sched.cpp — the G/M/P scheduler: run queues, park/ready, spinning
// Ms, M sleep and wake-up.
//
// Design (after Go's runtime/proc.go; see docs/ARCHITECTURE.md,
// "Scheduling").
//
// An M runs its scheduler loop on g0: find a runnable G, switch to it; when
// the G parks, yields or exits it switches back to g0 (or, when its own P has
// another runnable G, directly to that G: one FS-base write instead of two).
// Whatever a G publishes about itself (status Waiting, its place on a run
// queue) is published by a callback that runs *after* its registers are saved
// and on the next context's stack (mnp_ctx_switch's on-top call); publishing
// earlier would let another M resume it on a stack still in use.
//
// Waking Ms. Rejected designs: (1) wake an M for every readied G — thundering
// herd and a futex syscall per wake-up; (2) keep all Ms spinning — burns every
// CPU while idle; (3) wake at most one M per P without spinning — lost
// wake-ups when a P goes idle while a G is being readied. What we do, as Go
// does: an M with nothing to run becomes "spinning" (counted in
// Sched::nmspinning, at most half the busy Ps) and steals; readying a G wakes
// an M only when there is an idle P and no spinning M. Protocol that rules out
// lost wake-ups (all seq_cst):
//   readier: publish G on a run queue;  then load nmspinning (and npidle)
//   spinner about to sleep: put P on the idle list; decrement nmspinning;
//            then re-check every run queue
// Either the readier sees the spinner (which then sees the G on re-check) or
// the spinner is gone and the readier wakes someone. The last spinning M that
// finds work wakes another (resetspinning), so a burst of work fans out.
//
// Departing from Go: a spinning M keeps looking for up to Sched::spin_ns
// (between kSpinMinNs and kSpinNs) before it sleeps. Creating or waking a
// thread then usually finds the spinner already running, and the futex
// wake-up (a syscall on the readier's critical path) is paid once per spin
// period instead of once per readied G. The budget follows what spinning
// has been paying (spin_paid, spin_failed): a spin that runs its budget,
// finds nothing and spares no readier a wake-up (wakep, while it spins)
// cuts it by a quarter; a spin that finds work after waiting w raises it
// to 2w (at most kSpinNs), and so does one that finds work right after its
// M came back to spin within kSpinNs of the start of a spin that gave up
// (spin_came_late): w is then that wait, as for the timer M woken by a
// timer due within kSpinNs of the start of its failed spin that readies a
// G. A spin also waits for a timer due before its budget (counted from the
// spin's start) runs out, even once no P runs Gs. Event loops whose work
// comes from the netpoller, which a spinner does not watch (memcached's
// workers: 3 spins in 5 found nothing), thus spin kSpinMinNs, about one
// park and wake-up; bursts of creates or wake-ups, pairs that hand a mutex
// back and forth on one P and producers that sleep a few tens of µs keep
// the long spin.
//
// Wiring (Go's LockOSThread; docs/ARCHITECTURE.md, "Wiring"). A G that left
// state on its kernel thread runs only on that M, which runs nothing else:
// while the G waits, the M sleeps without a P (stoplockedm), and whichever
// M pops the G hands its P over (startlockedm). Rejected: moving the state
// with the G (most of it cannot be read back or set for another thread:
// tracer links, namespaces, seccomp filters) and refusing the calls.
#include "core/sched.h"
#include "core/ksched.h"
#include "core/sched_internal.h"

#include <linux/mman.h>
#include <malloc.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <pthread.h>
#include <setjmp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>

#include "core/altstack.h"
#include "core/base.h"
#include "core/compact.h"
#include "core/cpuclock.h"
#include "core/gmem.h"
#include "core/mcache.h"
#include "core/mthread.h"
#include "core/netpoll.h"
#include "core/poke.h"
#include "core/sema.h"
#include "core/sigpend.h"
#include "core/preempt.h"
#include "core/trace.h"
#include "core/tcb.h"

namespace mnp {

MNP_START_DATA constinit Sched sched;
MNP_START_DATA constinit bool runtime_up = false;
__thread G* tls_g = nullptr;
__thread bool tls_vfork_child = false;
__thread bool tls_unwinding = false;

// ---- the M's hold count and the program's signal handlers (futex.h) -------
//
// M::locks counts the runtime Locks the M holds, plus one while it runs
// scheduler code: on g0, and across every switch from a G to the moment
// the resumed G (or g0) is back in its own code (on-top callbacks touch the
// P's queues and take locks). A handler of the program's delivered to the
// M meanwhile is held back and raised again when the count drops to 0: as
// a resumed G returns from its switch, or as an idle M goes to sleep.

namespace {
// Signals 1..63 have their own bit; 64 takes bit 0, which no signal uses.
inline uint64_t sig_bit(int sig) { return 1ULL << (sig & 63); }

inline M* m_of_thread() {
  G* g = tls_g;
  return g ? g->m : nullptr;
}

using SigKeepHook = void (*)(int, const siginfo_t*);
MNP_START_DATA constinit SigKeepHook g_sig_keep_hook = nullptr;
}  // namespace

// The count dropped to 0: raise every held-back signal again, to this
// thread. The kernel runs the handler on the way out of tgkill, unless the
// thread blocks it now: then when it unblocks — right for a handler of it
// that is running (M::kmask unknown), but a mask the M loaded meanwhile
// (the G it switched to, or g0's idle mask) may block it for good, and a
// signal the kernel gave to the process would then wait on this one thread
// while a G elsewhere waits for it (sigsuspend, pselect at one P hung so):
// such a one is kept for a G instead (g_sig_keep_hook: sigpend, as the
// trampoline keeps one for a G that blocks it).
MNP_NOINLINE void m_signal_redeliver(M* mp) {
  long pid = raw_syscall(SYS_getpid);
  for (;;) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    uint64_t d = mp->sig_deferred;
    if (!d) return;
    int bit = __builtin_ctzll(d);
    int sig = bit == 0 ? 64 : bit;
    uint64_t k = mp->kmask;
    if (k != kKmaskUnknown && ((k >> (sig - 1)) & 1) && g_sig_keep_hook) {
      siginfo_t si = mp->sig_info[sig];
      mp->sig_deferred = mp->sig_deferred & ~sig_bit(sig);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      g_sig_keep_hook(sig, &si);
      continue;
    }
    mp->sig_redeliver = mp->sig_redeliver | sig_bit(sig);
    mp->sig_deferred = mp->sig_deferred & ~sig_bit(sig);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    raw_syscall(SYS_tgkill, pid, mp->tid, sig);
  }
}

namespace {

// mnp_ctx_switch writes the FS base only when the two contexts' differ:
// count those writes (M::fs_writes, shown by MNP_DEBUG=schedtrace).
inline void count_fs_write(M* mp, const Context* from, const Context* to) {
  if (from->fs != to->fs)
    mp->fs_writes.store(mp->fs_writes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Alternate signal stacks move with their G (core/altstack.h): a switch
// puts the incoming G's on the thread, or none. A G that switches away on
// its own (a handler of the program's that parks: SBCL's threads wait for
// the end of a collection in the handler of its stop signal) leaves live
// frames there, the kernel's signal frame with the interrupted context at
// the top. Natively the thread is still on it, and the kernel puts a
// nested handler's frame below them; a thread that has the stack but is
// not on it takes it for free and writes the next SA_ONSTACK frame (the
// runtime's signal, the program's handlers) over them: SBCL found a
// stopped thread's context overwritten ("garbage_collect: no SP known for
// thread") or hung. That is the M after such a G switched away, and the M
// that puts the stack back before it switches to the G. (And the kernel
// refuses to change the stack a thread runs on: EPERM.) So when the G that
// leaves or the one that comes is on its alternate stack, the M blocks
// signals from before the switch until the incoming side, on its own
// stack, has put what it needs (altstack_settle) and the incoming G has
// loaded its own mask. glibc's 32 and 33 stay open: they have no
// SA_ONSTACK, and set*id waits for every thread.
constexpr uint64_t kAltstackAwayMask = ~((uint64_t{1} << 31) | (uint64_t{1} << 32));

inline uintptr_t alt_lo_of(const G* g) { return g && g->own_altstack ? g->altstack_lo : 0; }
inline uintptr_t alt_hi_of(const G* g) { return g && g->own_altstack ? g->altstack_hi : 0; }

// Before a switch from the running G to next (null: g0), on the G's stack.
// Before the G can be resumed elsewhere: it may take a signal on its own
// stack there, which must not be this thread's too.
inline void altstack_leave(M* mp, const G* next) {
  if (MNP_LIKELY(altstack_fits(mp, alt_lo_of(next), alt_hi_of(next)))) return;
  char here;
  auto sp = reinterpret_cast<uintptr_t>(&here);
  bool leaving_on_it = sp >= mp->alt_lo && sp < mp->alt_hi;
  bool coming_on_it = next && next->ctx.sp >= alt_lo_of(next) && next->ctx.sp < alt_hi_of(next);
  if (leaving_on_it || coming_on_it) m_set_kmask(mp, kAltstackAwayMask);
  else altstack_put(mp, next, next ? next->ctx.sp : 0);
}

// After a switch, on the side that runs now (gp: the G, null: g0), before
// the G's own mask is loaded.
inline void altstack_settle(M* mp, const G* gp) {
  if (MNP_LIKELY(altstack_fits(mp, alt_lo_of(gp), alt_hi_of(gp)))) return;
  char here;
  altstack_put(mp, gp, reinterpret_cast<uintptr_t>(&here));
}

// Every switch away from a user G: the count goes up on this M and down on
// whichever M the G is resumed by (G::m is that one by then). The caller
// took it (m_hold) when it started to look at its M and P: from then on a
// handler of the program's that parks this very G (moving it to another M)
// or touches this P's queues cannot run in the middle (park, yield,
// preempt_switch, exitsyscall_park).
// next: the user G that runs next on this M, or null for g0 (CPU clocks).
// park_time: prev's G::park_time when it parks (the G dump's time waiting),
// stamped with the cycle count the CPU clocks read anyway.
inline void switch_from_g(M* mp, G* prev, G* next, Context* to, CtxFn cb, void* arg, int64_t* park_time) {
  altstack_leave(mp, next);
  mcache_leave(prev, mp->p);  // first: the P may adopt prev's cache
  if (next) mcache_bind(next, mp->p);
  uint64_t tsc = park_time ? arch_cycles() : cpu_switch_tsc();
  if (park_time) *park_time = static_cast<int64_t>(tsc);
  cpu_switch(mp, prev, next, tsc);
  count_fs_write(mp, &prev->ctx, to);
  mnp_ctx_switch(&prev->ctx, to, cb, arg);
  altstack_settle(prev->m, prev);  // resumed, perhaps on another M
  g_load_kmask(prev);              // (sigmask.cpp)
  m_release(prev->m);
}
}  // namespace

void m_lock_enter() {
  if (G* g = tls_g) hold_m(g);
}

void m_lock_exit() {
  if (M* mp = m_of_thread()) m_release(mp);
}

namespace {

constexpr int64_t kStealNextDelayNs = 3000;  // a victim's next must sit this long
constexpr int32_t kPerPFreeMax = 64;
void gfree_idle_trim(P* pp);

MNP_START_DATA constinit M m0_storage;
MNP_COLD_BSS constinit siginfo_t m0_sig_info[kMSigInfos] = {};
MNP_START_DATA constinit G main_g_storage;
using OsThreadCreate = int (*)(void* (*)(void*), void*);
MNP_START_DATA constinit OsThreadCreate os_thread_create = nullptr;
MNP_START_DATA constinit sigset_t g_start_mask = {};  // the initial thread's mask when the runtime started

uint32_t fastrand(M* mp) {
  // xorshift64*; per-M state, no sharing.
  uint64_t x = mp->rand;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  mp->rand = x;
  return static_cast<uint32_t>((x * 0x2545F4914F6CDD1DULL) >> 32);
}

// ---- global run queue (Sched::lock) --------------------------------------

// A G with a real-time rank goes into the real-time part, behind the Gs of
// its rank and ahead of the lower ones (a short list: the program's
// runnable real-time threads).
void globrunq_put_plain_locked(G* gp);

void globrunq_put_locked(G* gp) {
  if (MNP_UNLIKELY(gp->rt_rank != 0)) {
    gp->schedlink = nullptr;
    G** at = &sched.rtq_head;
    while (*at && (*at)->rt_rank >= gp->rt_rank) at = &(*at)->schedlink;
    gp->schedlink = *at;
    *at = gp;
    sched.rtq_size.fetch_add(1, std::memory_order_seq_cst);
    sched.runq_size.fetch_add(1, std::memory_order_seq_cst);
    return;
  }
  globrunq_put_plain_locked(gp);
}

// The tail of the ordinary part, whatever gp's rank.
void globrunq_put_plain_locked(G* gp) {
  gp->schedlink = nullptr;
  if (sched.runq_tail) sched.runq_tail->schedlink = gp;
  else sched.runq_head = gp;
  sched.runq_tail = gp;
  sched.runq_size.fetch_add(1, std::memory_order_seq_cst);
}

// The tail of the woken part (Sched::wokeq_last), ahead of the ordinary
// Gs; a G with a rank goes to the real-time part as always.
void globrunq_put_woken_locked(G* gp) {
  if (MNP_UNLIKELY(gp->rt_rank != 0)) {
    globrunq_put_locked(gp);
    return;
  }
  G** at = sched.wokeq_last ? &sched.wokeq_last->schedlink : &sched.runq_head;
  gp->schedlink = *at;
  *at = gp;
  if (!gp->schedlink) sched.runq_tail = gp;
  sched.wokeq_last = gp;
  gp->glob_woken = true;
  sched.wokeq_size.fetch_add(1, std::memory_order_seq_cst);
  sched.runq_size.fetch_add(1, std::memory_order_seq_cst);
}

void globrunq_put_batch_locked(G** batch, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) globrunq_put_locked(batch[i]);
}

G* rtq_pop_locked() {
  G* gp = sched.rtq_head;
  if (!gp) return nullptr;
  sched.rtq_head = gp->schedlink;
  gp->schedlink = nullptr;
  sched.rtq_size.fetch_sub(1, std::memory_order_relaxed);
  sched.runq_size.fetch_sub(1, std::memory_order_relaxed);
  return gp;
}

G* globrunq_pop_locked() {
  if (MNP_UNLIKELY(sched.rtq_head != nullptr)) return rtq_pop_locked();
  G* gp = sched.runq_head;
  if (!gp) return nullptr;
  sched.runq_head = gp->schedlink;
  if (!sched.runq_head) sched.runq_tail = nullptr;
  gp->schedlink = nullptr;
  if (gp->glob_woken) {
    gp->glob_woken = false;
    if (sched.wokeq_last == gp) sched.wokeq_last = nullptr;
    sched.wokeq_size.fetch_sub(1, std::memory_order_relaxed);
  }
  sched.runq_size.fetch_sub(1, std::memory_order_relaxed);
  return gp;
}

// Takes a fair share of the global queue: one G to run, the rest onto pp.
G* globrunq_get_locked(P* pp, int32_t max) {
  int32_t size = sched.runq_size.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  int32_t n = size / static_cast<int32_t>(sched.nprocs) + 1;
  if (n > size) n = size;
  if (max > 0 && n > max) n = max;
  if (n > static_cast<int32_t>(kRunqSize / 2)) n = kRunqSize / 2;
  // A real-time G alone: the others of its part stay where every P looks
  // first, and none goes to a local queue.
  if (MNP_UNLIKELY(sched.rtq_head != nullptr)) return rtq_pop_locked();
  G* gp = globrunq_pop_locked();
  for (int32_t i = 1; i < n; i++) {
    G* g2 = globrunq_pop_locked();
    if (!runq_push_tail(&pp->runq, g2)) {  // cannot happen: we own pp and it had room
      globrunq_put_locked(g2);
      break;
    }
  }
  return gp;
}

// ---- local run queue ------------------------------------------------------

void runq_put(P* pp, G* gp, bool next) {
  if (MNP_UNLIKELY(gp->rt_rank != 0)) {  // ranked by priority, for every P (globrunq_put_locked)
    LockGuard lk(sched.lock);
    globrunq_put_locked(gp);
    return;
  }
  if (next) {
    gp = pp->runq.next.exchange(gp, std::memory_order_acq_rel);
    if (!gp) return;  // the kicked-out old next goes to the tail
  }
  for (;;) {
    if (runq_push_tail(&pp->runq, gp)) return;
    // Full: move half of it plus gp to the global queue in one batch.
    G* batch[kRunqSize / 2 + 1];
    uint32_t n = runq_take_half(&pp->runq, batch);
    if (n == 0) continue;  // a thief made room
    batch[n++] = gp;
    LockGuard lk(sched.lock);
    globrunq_put_batch_locked(batch, n);
    return;
  }
}

}  // namespace

// ---- P and M lists (sched_internal.h) ---------------------------------------

MNP_STARTUP void pidleput_locked(P* pp) {
  CHECK(pp->runq.empty());
  CHECK(!pp->on_idle_list && pp->m == nullptr);
  pp->on_idle_list = true;
  pp->status.store(kPIdle, std::memory_order_relaxed);
  pp->link = sched.pidle;
  sched.pidle = pp;
  sched.npidle.fetch_add(1, std::memory_order_seq_cst);
}

P* pidleget_locked() {
  P* pp = sched.pidle;
  if (pp) {
    sched.pidle = pp->link;
    pp->link = nullptr;
    pp->on_idle_list = false;
    sched.npidle.fetch_sub(1, std::memory_order_seq_cst);
  }
  return pp;
}

void mput_locked(M* mp) {
  mp->schedlink = sched.midle;
  sched.midle = mp;
  sched.nmidle++;
}

M* mget_locked() {
  M* mp = sched.midle;
  if (mp) {
    sched.midle = mp->schedlink;
    mp->schedlink = nullptr;
    sched.nmidle--;
  }
  return mp;
}

void acquirep(M* mp, P* pp) {
  CHECK(mp->p == nullptr && pp->m == nullptr);
  mp->p = pp;
  pp->m = mp;
  pp->status.store(kPRunning, std::memory_order_relaxed);
  sysmon_p_busy();  // it may sleep without a deadline while every P is idle
}

P* releasep(M* mp) {
  P* pp = mp->p;
  CHECK(pp && pp->m == mp);
  pp->m = nullptr;
  mp->p = nullptr;
  return pp;
}

namespace {

// ---- M creation, sleep, wake-up --------------------------------------------

void m_loop(M* mp) __attribute__((noreturn));

void* mstart(void* arg) {
  M* mp = static_cast<M*>(arg);
  m_hold(mp);  // scheduler code from here on (released while it sleeps)
  uintptr_t fs = arch_get_fs();
  // ASan build: glibc may hand this thread a cached stack whose earlier
  // thread's frames left ASan's poison behind (ASan clears only the stacks
  // of threads its own pthread_create made; runtime threads are glibc's).
  san_unpoison_below(tcb_field<void*>(reinterpret_cast<void*>(fs), tcbo::kStackBlock));
  tls_g = &mp->g0;
  mp->g0.tcb = reinterpret_cast<void*>(fs);
  mp->g0.ctx.fs = fs;
  mp->glibc_tcb = reinterpret_cast<void*>(fs);
  // Its creator writes a raw thread's too, after the clone (mthread.cpp).
  __atomic_store_n(&mp->tid, raw_gettid(), __ATOMIC_RELAXED);
  // Every runtime thread is born with all signals blocked (the creator
  // blocks them around the clone); an M takes the mask newm chose. A
  // handler that arrives before this point is held back (m_hold above).
  // Published before it is applied, plus what every G came to block since
  // newm chose it (sigmask.cpp, m_set_idle_kmask: the same order).
  uint64_t chosen = sigset_bits(&mp->sigmask);
  __atomic_store_n(&mp->kmask, chosen, __ATOMIC_RELAXED);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  mp->sigmask.__val[0] |= idle_kmask();
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mp->sigmask), 0, 8);
  mp->kmask = sigset_bits(&mp->sigmask);
  // An M made for a wired G (wire_leave_m0) gets its P with the G, in
  // stoplockedm; one the G's hand-over put here already is for that.
  if (!mp->lockedg) {
    P* pp = mp->nextp;
    mp->nextp = nullptr;
    acquirep(mp, pp);
  }
  m_loop(mp);
}

// An M's kernel thread (core/mthread.h): glibc's start routine would
// have set up the locale tables of the new thread's TLS.
[[noreturn]] void mstart_raw(void* arg) {
  tcb_thread_start_on_current();
  mstart(arg);
  __builtin_unreachable();
}

void m_thread_start(M* mp) {
#if MNP_ASAN
  int r = os_thread_create ? os_thread_create(mstart, mp) : -1;
#else
  int r = mthread_create(mp, mstart_raw);
#endif
  if (r != 0) fatal("cannot create a kernel thread for an M");
}

// Ms a wired M asked for, for sysmon to start (newm).
constinit std::atomic<M*> g_newm_pending{nullptr};

M* allocm() {
  // The siginfos right after the M (M is cache-line aligned, so they are too).
  static_assert(sizeof(M) % alignof(siginfo_t) == 0);
  constexpr size_t kSize = sizeof(M) + kMSigInfos * sizeof(siginfo_t);
  long r = raw_syscall6(SYS_mmap, 0, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) fatal("cannot allocate an M");
  M* mp = new (reinterpret_cast<void*>(r)) M();
  mp->sig_info = reinterpret_cast<siginfo_t*>(mp + 1);
  mp->g0.is_g0 = true;
  mp->g0.m = mp;
  initgstatus(&mp->g0, kGRunning);  // published by the allm CAS below
  mp->id = static_cast<uint32_t>(sched.mcount.fetch_add(1));
  mp->rand = 0x9E3779B97F4A7C15ULL * (mp->id + 1) ^ static_cast<uint64_t>(nanotime());
  M* head = sched.allm.load(std::memory_order_relaxed);
  do mp->alllink = head;
  while (!sched.allm.compare_exchange_weak(head, mp, std::memory_order_release));
  return mp;
}

void m_init_mask(M* mp) {
  // The creator's mask, as a new thread inherits it natively (a program
  // that blocks signals in main before it creates threads, so that one
  // thread takes them in sigwait, expects its threads to block them too);
  // sysmon blocks everything, so an M it starts gets the main thread's
  // start-up mask. The runtime's signal is never blocked on an M. Each G
  // then loads its own mask when it runs (sigmask.cpp).
  if (on_sysmon()) {
    // Plus what every G blocks, as an idle M's mask has it: until it runs a
    // G the new thread is an idle M, and with main's start-up mask alone it
    // took a SIGURG that the program blocked and ignored to read it from a
    // signalfd (seen with strace: discarded, and the program's epoll_wait
    // timed out).
    mp->sigmask = g_start_mask;
    mp->sigmask.__val[0] |= idle_kmask();
  } else {
    raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&mp->sigmask), 8);
  }
  for (int sig = 1; sig < 65; sig++)
    if (poke_signal_is(sig)) sigdelset(&mp->sigmask, sig);
}

void newm(P* pp, bool spinning) {
  // sysmon before the first M: its thread makes glibc multi-threaded first,
  // the runtime's signal is installed before the mask below leaves it out,
  // and sysmon must be there to start a wired M's thread (newm_drain).
  sysmon_ensure();
  M* mp = allocm();
  mp->nextp = pp;
  mp->spinning = spinning;
  m_init_mask(mp);
  // A new kernel thread inherits its creator's per-thread state (name,
  // credentials, namespaces, seccomp filters). A wired M may carry its G's:
  // sysmon, which never runs G code, creates the thread instead.
  if (M* cur = m_of_thread(); MNP_UNLIKELY(cur && (cur->lockedg || cur->dying))) {
    M* head = g_newm_pending.load(std::memory_order_relaxed);
    do mp->newmlink = head;
    while (!g_newm_pending.compare_exchange_weak(head, mp, std::memory_order_release));
    sysmon_wake_for_newm();
    return;
  }
  m_thread_start(mp);
}

}  // namespace

// Starts an M on pp (or any idle P). With spinning, the caller has already
// counted the new M in nmspinning. The caller's M is held throughout: from
// the moment pp is off the idle list until nm has it, pp is in no list, and
// a handler of the program's raised as sched.lock dropped could park the
// very G that runs this (a handler in a wrapped call takes a P, handler_begin,
// and with none free queues its G: entersyscall_block's hand-off, at one P,
// then left the P with an M nobody woke, and the process hung).
void startm(P* pp, bool spinning) {
  m_lock_enter();
  sched.lock.lock();
  if (!pp) {
    pp = pidleget_locked();
    if (!pp) {
      sched.lock.unlock();
      if (spinning && sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) <= 0)
        fatal("startm: negative nmspinning");
      m_lock_exit();
      return;
    }
  }
  M* nm = mget_locked();
  sched.lock.unlock();
  if (!nm) {
    newm(pp, spinning);
  } else {
    CHECK(!nm->spinning && nm->nextp == nullptr);
    nm->spinning = spinning;
    nm->nextp = pp;
    nm->park.wakeup();
  }
  m_lock_exit();
}

namespace {

bool midle_remove_locked(M* mp) {
  for (M** pm = &sched.midle; *pm; pm = &(*pm)->schedlink)
    if (*pm == mp) {
      *pm = mp->schedlink;
      mp->schedlink = nullptr;
      sched.nmidle--;
      return true;
    }
  return false;
}

// Sleeps an M that is already on the idle list until startm hands it a P,
// or until `until` (monotonic ns) if it becomes the timer M. Returns with a
// P, or without one after a timeout (the caller fires due timers and puts
// the M back on the idle list).
void mpark(M* mp, int64_t until) {
  CHECK(mp->p == nullptr);  // spinning may already be set by startm's hand-off
  m_set_idle_kmask(mp);     // sigmask.cpp
  bool timed = false;
  if (until != kNever) {
    LockGuard lk(sched.lock);
    if (!sched.timer_m || until < sched.timer_m_until.load(std::memory_order_relaxed)) {
      sched.timer_m = mp;
      sched.timer_m_until.store(until, std::memory_order_seq_cst);
      timed = true;
    }
  }
  if (timed) {
    int64_t left = until - nanotime();
    if (left > 0) {
      m_release(mp);  // asleep, no P, no lock: the program's handlers may run
      mp->park.sleep_for(left);
      m_hold(mp);
      cpu_stale(mp);
    }
    sched.lock.lock();
    if (sched.timer_m == mp) {
      sched.timer_m = nullptr;
      sched.timer_m_until.store(kNever, std::memory_order_seq_cst);
    }
    // Still on the idle list: nobody handed us a P; we timed out.
    if (midle_remove_locked(mp)) {
      P* pp = pidleget_locked();
      sched.lock.unlock();
      if (pp) acquirep(mp, pp);
      return;
    }
    sched.lock.unlock();
  }
  m_release(mp);
  mp->park.sleep();
  m_hold(mp);
  cpu_stale(mp);
  mp->park.clear();
  P* pp = mp->nextp;
  mp->nextp = nullptr;
  acquirep(mp, pp);
}

// ---- wiring (docs/ARCHITECTURE.md, "Wiring") ----------------------------------
//
// A wired M runs its G and nothing else. When the G stops running (park,
// yield, preemption, a syscall return without a P) the M comes back to g0,
// gives its P to another M (handoffp), and sleeps on its note, on no idle
// list. Whatever M later pops the G from a run queue does not run it: it
// hands its own P to the wired M (startlockedm) and goes idle. The note
// allows one wake-up per sleep, and exactly one M pops a runnable G, so the
// hand-over cannot be doubled; a hand-over that comes before the wired M
// sleeps finds the note set and costs no sleep.

void startlockedm(M* mp, G* gp);

// The P of mp, whose wired G stops or ends, goes to the first real-time G
// of the global queue if that G is wired: mp wakes its M with the P itself,
// before it sleeps or ends. The kernel then sees the next real-time thread
// runnable before this one stops, and runs no lower real-time thread that
// holds another P in between (as natively, where all are runnable at
// once). Returns false, with mp's P, if the first real-time G is mp's own
// (readied already: it runs on). Otherwise handoffp.
bool handoffp_rt(M* mp) {
  if (MNP_UNLIKELY(sched.rtq_size.load(std::memory_order_relaxed) > 0)) {
    sched.lock.lock();
    G* gp = sched.rtq_head;
    if (gp && gp->lockedm != nullptr) {
      rtq_pop_locked();
      sched.lock.unlock();
      if (gp->lockedm == mp) return false;
      startlockedm(mp, gp);
      return true;
    }
    sched.lock.unlock();
  }
  handoffp(releasep(mp));
  return true;
}

// On g0 of mp, whose wired G is not running: returns holding a P, with the
// G runnable and handed over to this M.
void stoplockedm(M* mp) {
  if (P* pp = mp->p) {
    // Readied onto this P's next already (a park whose commit failed, a
    // wake-up by a timer of this P): it runs on, with the P.
    G* nx = pp->runq.next.load(std::memory_order_acquire);
    if (nx == mp->lockedg && pp->runq.next.compare_exchange_strong(nx, nullptr, std::memory_order_acq_rel)) return;
    if (!handoffp_rt(mp)) return;
  }
  m_set_idle_kmask(mp);  // as mpark
  m_release(mp);
  mp->park.sleep();
  m_hold(mp);
  mp->park.clear();
  P* pp = mp->nextp;
  mp->nextp = nullptr;
  acquirep(mp, pp);
}

// On g0 of mp: gp was popped here but is wired to another M. Gives that M
// this M's P; mp is left without one (m_loop puts it on the idle list).
void startlockedm(M* mp, G* gp) {
  M* lm = gp->lockedm;
  P* pp = releasep(mp);
  CHECK(lm != mp && lm->nextp == nullptr);
  lm->nextp = pp;
  lm->park.wakeup();
}

// On g0 of mp, whose wired G has exited: the kernel state the G left on
// this thread (a tracer's tracees, namespaces, credentials, a name) goes
// with the thread, as natively. M0, the process's initial thread, stays
// (its exit would make the process look dead to the tools that watch its
// leader): it sleeps for good.
[[noreturn]] void mexit(M* mp) {
  // Never false here: the M's G has ended, so no queued G is wired to it.
  if (mp->p && !handoffp_rt(mp)) fatal("mexit: a queued G is wired to an exiting M");
  // With its signals still open: a set*id broadcast may be waiting for it.
  if (mthread_is_raw(mp)) mthread_exit(mp);
  sigset_t all;
  sigfillset(&all);
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), 0, 8);
  if (mp != &m0_storage) {
    mp->tid = 0;  // m_by_tid must not find it; a new thread may reuse the id
    for (;;) raw_syscall(SYS_exit, 0);
  }
  for (;;) raw_sleep_ns(3600LL * 1000000000);
}

}  // namespace

// A timer earlier than the timer M's wake-up was added: hand that M an idle
// P so it recomputes its sleep (with no idle P, every P's owner runs timers
// at its own scheduling points).
void timer_m_notify(int64_t when) {
  netpoll_timer_added(when);
  if (when >= sched.timer_m_until.load(std::memory_order_seq_cst)) return;
  sched.lock.lock();
  M* mp = sched.timer_m;
  if (!mp || when >= sched.timer_m_until.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  sched.timer_m = nullptr;
  sched.timer_m_until.store(kNever, std::memory_order_seq_cst);
  // Not on the idle list any more: it is being woken already.
  if (!midle_remove_locked(mp)) {
    sched.lock.unlock();
    return;
  }
  P* pp = pidleget_locked();
  if (!pp) {
    mput_locked(mp);
    sched.lock.unlock();
    return;
  }
  sched.lock.unlock();
  mp->nextp = pp;
  mp->park.wakeup();
}

namespace {

void resetspinning(M* mp) {
  mp->spinning = false;
  if (sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) <= 0) fatal("resetspinning: negative nmspinning");
  // We were (perhaps) the last spinner and found work: there may be more.
  wakep();
}

// ---- finding work -----------------------------------------------------------

G* steal_from(M* mp, P* victim, bool take_next) {
  P* pp = mp->p;
  G* batch[kRunqSize / 2];
  uint32_t n = runq_grab(&victim->runq, batch, false);
  if (n == 0 && take_next) {
    // Only a next that stayed put for a while: its owner is probably about
    // to run it itself (a ping-pong pair or a create followed by join).
    G* nx = victim->runq.next.load(std::memory_order_acquire);
    if (!nx) return nullptr;
    // Bounded in pauses as well, for a clock that stands still.
    int64_t until = nanotime() + kStealNextDelayNs;
    for (int i = 0; i < 4096 && nanotime() < until; i++) cpu_relax();
    if (victim->runq.next.compare_exchange_strong(nx, nullptr, std::memory_order_acq_rel)) return nx;
    return nullptr;
  }
  if (n == 0) return nullptr;
  for (uint32_t i = 1; i < n; i++) CHECK(runq_push_tail(&pp->runq, batch[i]));
  return batch[0];
}

G* steal_work(M* mp, bool take_next) {
  uint32_t np = sched.nprocs;
  // Visit Ps in a random order: a random start and a stride coprime to np.
  uint32_t start = fastrand(mp) % np;
  uint32_t stride = 1;
  if (np > 2) {
    do stride = 1 + fastrand(mp) % (np - 1);
    while (std::gcd(stride, np) != 1);
  }
  for (uint32_t i = 0, k = start; i < np; i++, k = (k + stride) % np) {
    P* victim = &sched.allp[k];
    if (victim == mp->p) continue;
    // Due timers of a busy P fire here rather than wait for its owner.
    if (victim->timers.when0.load(std::memory_order_relaxed) != kNever) timers_run(victim, nanotime());
    if (G* gp = steal_from(mp, victim, take_next)) return gp;
  }
  return nullptr;
}

bool any_runq_nonempty() {
  for (uint32_t i = 0; i < sched.nprocs; i++)
    if (!sched.allp[i].runq.empty()) return true;
  return false;
}

// Whether an M with nothing to run should spin. Only other Ps running Gs
// can make work for it (ready, newproc, timers they arm), so it starts a
// spin only while some other P is busy, and, as in Go, while the spinning
// Ms are fewer than half of those (an M woken to spin, mp->spinning, was
// counted by its waker and keeps spinning while anything is busy). A spin
// under way also waits for a timer due within its budget (find_runnable).
// A process with one live G never spins: that G is parked, or running or
// queued where its own M finds it.
bool spin_worth_it(M* mp) {
  if (sched.ngsys_live.load(std::memory_order_relaxed) <= 1) return false;
  // Other Ps whose Ms run Gs: neither idle, nor this one, nor spinning.
  int32_t nspin = sched.nmspinning.load(std::memory_order_relaxed);
  int32_t running = static_cast<int32_t>(sched.nprocs) - sched.npidle.load(std::memory_order_relaxed) - 1 -
                    (nspin - (mp->spinning ? 1 : 0));
  if (running <= 0) return false;
  return mp->spinning || 2 * nspin < running;
}

// The spin budget (Sched::spin_ns, see the top of this file). Racy
// read-modify-writes are fine: it is a hint.
void spin_paid(int64_t waited) {
  int64_t want = std::min(kSpinNs, 2 * waited);
  if (want > sched.spin_ns.load(std::memory_order_relaxed)) sched.spin_ns.store(want, std::memory_order_relaxed);
}

void spin_failed() {
  int64_t cur = sched.spin_ns.load(std::memory_order_relaxed);
  sched.spin_ns.store(std::max(kSpinMinNs, cur - cur / 4), std::memory_order_relaxed);
}

// A spin of this search gave up (at *gaveup) and work seems to have come
// after all: the M is back to spin (the re-check saw a queue, or wakep or
// handoffp woke it). What came may be nothing another P could take (the
// readier's own next, which its owner runs), so the wait counts only if
// the next spin finds work (*late, find_runnable).
void spin_came_late(int64_t* gaveup, int64_t* late) {
  if (*gaveup != 0) {
    int64_t waited = nanotime() - *gaveup;
    if (waited < kSpinNs) *late = waited;
  }
  *gaveup = 0;
}

// Returns a G to run; the M holds a P on return (possibly another one).
// *inherit is set when the G was the P's next (it runs on in the current
// time slice, see execute).
G* find_runnable(M* mp, bool* inherit) {
  int64_t spin_gaveup = 0;  // when this search's last spin, which ran its budget for nothing, began
  int64_t late_wait = 0;    // how long before work seemed to come that spin began (spin_came_late)
top:
  P* pp = mp->p;
  *inherit = false;
  if (pp->timers.when0.load(std::memory_order_relaxed) != kNever) timers_run(pp, nanotime());
  // Now and then the global queue first, or a pair handing the P back and
  // forth through the local queue would keep it waiting for ever; always
  // when a real-time G waits there.
  if ((pp->schedtick % 61 == 0 || sched.rtq_size.load(std::memory_order_relaxed) > 0 ||
       sched.wokeq_size.load(std::memory_order_relaxed) > 0) &&
      sched.runq_size.load(std::memory_order_relaxed) > 0) {
    LockGuard lk(sched.lock);
    if (G* gp = globrunq_get_locked(pp, 1)) return gp;
  }
  if (G* gp = runq_pop(&pp->runq, inherit)) return gp;
  if (sched.runq_size.load(std::memory_order_relaxed) > 0) {
    LockGuard lk(sched.lock);
    if (G* gp = globrunq_get_locked(pp, 0)) return gp;
  }

  // Ready fds nobody has harvested (no M is blocked in the netpoller): their
  // Gs land on this P, before we go stealing.
  if (netpoll_worth_polling() && netpoll_poll_now() > 0)
    if (G* gp = runq_pop(&pp->runq, inherit)) return gp;

  // Spin looking for work only where it can pay off (spin_worth_it).
  if (spin_worth_it(mp)) {
    if (!mp->spinning) {
      mp->spinning = true;
      sched.nmspinning.fetch_add(1, std::memory_order_seq_cst);
    }
    int64_t start = nanotime();
    int64_t budget = sched.spin_ns.load(std::memory_order_relaxed);
    int64_t owed = late_wait;  // this spin's find also proves that wait
    late_wait = 0;
    if (sched.spin_spared_wake.load(std::memory_order_relaxed))
      sched.spin_spared_wake.store(false, std::memory_order_relaxed);
    for (int round = 0;; round++) {
      int64_t now = nanotime();
      // This P's due timers too (steal_work runs the others'); what they
      // ready runs first.
      G* gp = nullptr;
      if (pp->timers.when0.load(std::memory_order_relaxed) <= now && timers_run(pp, now) > 0)
        gp = runq_pop(&pp->runq, inherit);
      if (!gp) gp = steal_work(mp, now - start > kStealNextDelayNs);
      if (!gp) gp = runq_pop(&pp->runq, inherit);
      if (!gp && sched.runq_size.load(std::memory_order_relaxed) > 0) {
        LockGuard lk(sched.lock);
        gp = globrunq_get_locked(pp, 0);
      }
      if (gp) {
        spin_paid(std::max(now - start, owed));
        return gp;
      }
      // A timer due within the budget will ready a G: worth waiting for
      // even when no other P runs Gs (a producer that sleeps 40 us between
      // items; the timer M's sleep would add the kernel's timer slack, 50
      // us by default).
      if (round >= 4 && (now - start > budget || (!spin_worth_it(mp) && timers_earliest() > start + budget))) {
        if (now - start > budget && !sched.spin_spared_wake.load(std::memory_order_relaxed)) {
          spin_failed();
          spin_gaveup = start;
        }
        break;
      }
      for (int i = 0; i < 50; i++) cpu_relax();
    }
    if (netpoll_worth_polling() && netpoll_poll_now() > 0)
      if (G* gp = runq_pop(&pp->runq, inherit)) return gp;
  } else {
    // Not spinning: the other Ps' due timers, which a spinner runs as it
    // visits them (steal_work) and an idle P has nobody else to run (the
    // timer M wakes for them holding whichever P it gets).
    int64_t now = nanotime();
    int fired = 0;
    for (uint32_t i = 0; i < sched.nprocs; i++) {
      P* victim = &sched.allp[i];
      if (victim != pp && victim->timers.when0.load(std::memory_order_relaxed) <= now) fired += timers_run(victim, now);
    }
    if (fired > 0)
      if (G* gp = runq_pop(&pp->runq, inherit)) return gp;
  }

  gfree_idle_trim(pp);
  // Nothing: give the P back. Unless this M is to try to become the
  // netpoller, it goes on the idle-M list in the same critical section, so
  // that whoever takes the P next finds this M to run it (an M between the
  // two would be invisible and startm would create a new one).
  sched.lock.lock();
  if (sched.runq_size.load(std::memory_order_relaxed) > 0) {
    G* gp = globrunq_get_locked(pp, 0);
    sched.lock.unlock();
    return gp;
  }
  // Read spinning before going on the idle list: from then on startm may
  // pick this M and set it for the hand-off.
  bool was_spinning = mp->spinning;
  mp->spinning = false;
  releasep(mp);
  pidleput_locked(pp);
  bool try_poll = netpoll_worth_polling();
  if (!try_poll) mput_locked(mp);
  sched.lock.unlock();

  if (was_spinning) {
    if (sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) <= 0) fatal("find_runnable: negative nmspinning");
    // Re-check after no longer counting as spinning (see the protocol above).
    if (any_runq_nonempty() || sched.runq_size.load(std::memory_order_seq_cst) > 0) {
      sched.lock.lock();
      // Off the idle list first; if we are no longer on it, startm already
      // picked us and a P is on its way through the note.
      if (try_poll || midle_remove_locked(mp)) {
        if (P* p2 = pidleget_locked()) {
          sched.lock.unlock();
          acquirep(mp, p2);
          mp->spinning = true;
          sched.nmspinning.fetch_add(1, std::memory_order_seq_cst);
          spin_came_late(&spin_gaveup, &late_wait);
          goto top;
        }
        if (!try_poll) mput_locked(mp);
      }
      sched.lock.unlock();
    }
    // Likewise for the netpoller: a G that started waiting for an fd just
    // now saw us spinning and did not start an M to poll for it.
    if (!try_poll && netpoll_worth_polling()) {
      LockGuard lk(sched.lock);
      try_poll = midle_remove_locked(mp);
    }
  }
  for (;;) {
    if (try_poll) {
      // Block in the netpoller (until an fd is ready or the earliest timer),
      // then run what it found on an idle P if there is one.
      struct epoll_event ev[128];
      m_set_idle_kmask(mp);  // sigmask.cpp
      m_release(mp);         // no P, no lock while it polls
      int n = netpoll_block(ev, 128);
      m_hold(mp);
      cpu_stale(mp);
      if (n >= 0) {
        P* p2;
        {
          LockGuard lk(sched.lock);
          p2 = pidleget_locked();
        }
        if (p2) acquirep(mp, p2);
        netpoll_dispatch(ev, n);
        timers_run_all(nanotime());
        spin_gaveup = 0;
        if (mp->p) goto top;
      }
      // Every P busy (or another M polls): sleep like any idle M.
      LockGuard lk(sched.lock);
      mput_locked(mp);
    }
    int64_t until = timers_earliest();
    mpark(mp, until);
    if (mp->p) {
      if (mp->spinning) {
        spin_came_late(&spin_gaveup, &late_wait);  // woken to spin (wakep, handoffp)
      } else if (spin_gaveup != 0 && until - spin_gaveup < kSpinNs) {
        // The timer M, woken at a timer due soon after its spin gave up:
        // if the timer readies a G, a spin that long would have found it.
        // (A cancelled timeout fires nothing; a hand-off's wake-up before
        // the deadline finds nothing due.)
        if (timers_run_all(nanotime()) > 0) spin_paid(until - spin_gaveup);
      }
      spin_gaveup = 0;
      goto top;
    }
    spin_gaveup = 0;
    // Timed out without a P (all busy): fire what is due; the Gs go to the
    // global queue, where the busy Ps find them.
    timers_run_all(nanotime());
    try_poll = netpoll_worth_polling();
    if (!try_poll) {
      LockGuard lk(sched.lock);
      mput_locked(mp);
    }
  }
}

// Runs gp on mp. schedtick counts time slices, not switches: a G taken from
// the P's next (inherit) runs on in the slice of the G that readied it, so
// a pair handing the P back and forth looks to sysmon like one G that has
// run too long, and it ends the slice after 2 ms (kPreemptNs, sysmon.cpp).
void execute(M* mp, G* gp, bool inherit) {
  casgstatus(gp, kGRunnable, kGRunning);
  gp->preempt.store(kPreemptNone, std::memory_order_relaxed);  // a mark from before it stopped
  gp->woke_by_timer.store(false, std::memory_order_relaxed);
  gmem_resume(gp);
  gp->m = mp;
  mp->curg = gp;
  mcache_bind(gp, mp->p);
  if (!inherit) mp->p->schedtick++;
  cpu_switch(mp, nullptr, gp, cpu_switch_tsc());
  count_fs_write(mp, &mp->g0.ctx, &gp->ctx);
  mnp_ctx_switch(&mp->g0.ctx, &gp->ctx, nullptr, nullptr);
  // Back on g0: the G that switched here has already been dealt with by its
  // on-top callback.
}

void m_loop(M* mp) {
  for (;;) {
    // On g0 after a G switched here (g0 of M0 is first entered so too).
    altstack_settle(mp, nullptr);
    if (MNP_UNLIKELY(mp->lockedg || mp->nextg || mp->dying)) {
      if (mp->dying) mexit(mp);
      if (G* gp = mp->lockedg) {
        stoplockedm(mp);
        execute(mp, gp, false);
        continue;
      }
      G* gp = mp->nextg;  // wired elsewhere, popped by park/yield/preempt here
      mp->nextg = nullptr;
      startlockedm(mp, gp);
    }
    while (!mp->p) {  // came back from a syscall without a P
      {
        LockGuard lk(sched.lock);
        mput_locked(mp);
      }
      mpark(mp, kNever);
    }
    bool inherit;
    G* gp = find_runnable(mp, &inherit);
    if (mp->spinning) resetspinning(mp);
    if (MNP_UNLIKELY(gp->lockedm != nullptr)) {
      startlockedm(mp, gp);
      continue;
    }
    execute(mp, gp, inherit);
  }
}

void m0_g0_entry(void* arg) { m_loop(static_cast<M*>(arg)); }

// ---- park / yield / exit plumbing ------------------------------------------

struct SwitchArgs {
  G* prev;
  ParkCommit fn;
  void* arg;
  P* pp;
  // A yield or preemption for a woken G (kPreemptWake): prev goes to the
  // P's next, to run again as soon as that G stops, not behind the queue.
  bool to_next = false;
};

void park_commit_cb(void* a) {
  auto* sa = static_cast<SwitchArgs*>(a);
  G* prev = sa->prev;
  ParkCommit fn = sa->fn;
  void* arg = sa->arg;
  P* pp = sa->pp;
  // From here on *sa may vanish: prev's stack is free for whoever readies it.
  casgstatus(prev, kGRunning, kGWaiting);
  if (fn && !fn(prev, arg)) {
    casgstatus(prev, kGWaiting, kGRunnable);
    if (pp) {
      runq_put(pp, prev, true);
    } else {  // parked without a P (park): this M goes idle
      {
        LockGuard lk(sched.lock);
        globrunq_put_locked(prev);
      }
      wakep();
    }
  }
  // The P's due timers: a park that hands the P to its next never passes
  // through find_runnable, and a chain of such parks would hold them back
  // for ever. Here, and not before the switch, because prev may be waiting
  // for one of them (next_local).
  if (MNP_UNLIKELY(pp && pp->timers.when0.load(std::memory_order_relaxed) != kNever)) timers_run(pp, nanotime());
}

void yield_commit_cb(void* a) {
  auto* sa = static_cast<SwitchArgs*>(a);
  G* prev = sa->prev;
  P* pp = sa->pp;
  casgstatus(prev, kGRunning, kGRunnable);
  runq_put(pp, prev, sa->to_next);
  // As ready does: with a P idle, an M takes it and steals prev. Else two
  // yield loops that met on one P took turns there for ever while the
  // other P stayed idle (no M looks for work without a wake-up).
  wakep();
}

// Picks the next G of this P without blocking: the fast path of park/yield.
// *inherit as for find_runnable. Due timers are run here only on the yield
// path: a parking G may have just armed a timer of its own, and firing it
// before the park commits would make ready() wait, on this very M, for a
// status change that cannot come; a park runs them in its commit instead
// (park_commit_cb). With slice_over, the ring's head goes before next, so
// that what readied it cannot pass the P on past the slice, and whatever
// runs starts a new slice; and the global queue goes first every other
// slice end, local Gs the others. Always global first starved this P's own
// Gs: two hogs preempted in turn went round through the global queue
// (where preemption puts them) while a G a timer had readied into next
// never ran (1 P, preempt_mask.c). Next keeps its place (a pair with nobody
// waiting behind it goes on as before, on this P, and is not left for
// thieves).
G* next_local(P* pp, bool run_timers, bool slice_over, bool* inherit) {
  if (run_timers && MNP_UNLIKELY(pp->timers.when0.load(std::memory_order_relaxed) != kNever))
    timers_run(pp, nanotime());
  if (MNP_UNLIKELY(slice_over)) {
    // A G a timer put in next (its sleep ended) is no partner of the G
    // whose slice ended: it goes first, in a slice of its own, as the
    // kernel runs a thread whose sleep ended ahead of ones that compute.
    // Behind the ring it waited a slice per G there (2-10 ms per 1 ms
    // usleep beside two computing threads at 1 P).
    G* n = pp->runq.next.load(std::memory_order_relaxed);
    if (n && n->woke_by_timer.load(std::memory_order_relaxed) && sched.rtq_size.load(std::memory_order_relaxed) == 0 &&
        pp->runq.next.compare_exchange_strong(n, nullptr, std::memory_order_acquire)) {
      *inherit = false;
      return n;
    }
  }
  bool global_turn = slice_over ? (pp->schedtick & 1) == 0 || pp->runq.empty() : pp->schedtick % 61 == 0;
  // Real-time Gs first, then woken ones (Sched::wokeq_size).
  if (MNP_UNLIKELY(sched.rtq_size.load(std::memory_order_relaxed) > 0 ||
                   sched.wokeq_size.load(std::memory_order_relaxed) > 0))
    global_turn = true;
  if (global_turn && sched.runq_size.load(std::memory_order_relaxed) > 0) {
    LockGuard lk(sched.lock);
    if (G* gp = globrunq_get_locked(pp, 1)) {
      *inherit = false;
      return gp;
    }
  }
  if (MNP_UNLIKELY(slice_over)) {
    *inherit = false;
    if (G* gp = runq_pop_ring(&pp->runq)) return gp;
    bool ignored;
    return runq_pop(&pp->runq, &ignored);
  }
  return runq_pop(&pp->runq, inherit);
}

// The mark left on gp (kPreempt*: sysmon's slice end, or a wake), taken:
// what it was, kPreemptNone if none. A plain load and store; a slice end
// lost to a race is requested again a millisecond later.
inline uint32_t take_mark(G* gp) {
  uint32_t v = gp->preempt.load(std::memory_order_relaxed);
  if (MNP_LIKELY(!v)) return kPreemptNone;
  gp->preempt.store(kPreemptNone, std::memory_order_relaxed);
  return v;
}
// Whether a mark taken ends the slice (a wake mark does not: the woken G
// runs in it).
inline bool slice_ends(uint32_t mark) { return mark == kPreemptMarked || mark == kPreemptAsync; }
inline bool take_preempt(G* gp) { return slice_ends(take_mark(gp)); }

// next_local for a direct switch from gp on mp: none when gp is wired (its
// M runs nothing else); a popped G wired to another M is left in M::nextg
// for g0 to hand over (m_loop), and the caller switches to g0.
inline G* next_local_unwired(M* mp, G* gp, P* pp, bool run_timers, bool slice_over, bool* inherit) {
  if (MNP_UNLIKELY(gp->lockedm != nullptr)) return nullptr;
  G* next = next_local(pp, run_timers, slice_over, inherit);
  if (MNP_UNLIKELY(next != nullptr && next->lockedm != nullptr)) {
    mp->nextg = next;
    return nullptr;
  }
  // Waiting on its own alternate stack (a handler that parked), which may
  // be small (Rust's: about 8 KiB): a direct switch's commit callback would
  // run there, below the handler's frames. By way of g0 instead, whose
  // switch to it calls nothing: back to the P's next.
  if (MNP_UNLIKELY(next != nullptr && next->own_altstack && next->ctx.sp >= next->altstack_lo &&
                   next->ctx.sp < next->altstack_hi)) {
    runq_put(pp, next, true);
    return nullptr;
  }
  return next;
}

inline void switch_g(M* mp, P* pp, G* prev, G* next, bool inherit, CtxFn cb, void* arg, int64_t* park_time) {
  casgstatus(next, kGRunnable, kGRunning);
  next->preempt.store(kPreemptNone, std::memory_order_relaxed);  // as in execute
  next->woke_by_timer.store(false, std::memory_order_relaxed);
  gmem_resume(next);
  next->m = mp;
  mp->curg = next;
  if (!inherit) pp->schedtick++;  // see execute
  switch_from_g(mp, prev, next, &next->ctx, cb, arg, park_time);
}

}  // namespace

const char* gstatus_name(uint32_t s) {
  switch (s) {
    case kGIdle:
      return "idle";
    case kGRunnable:
      return "runnable";
    case kGRunning:
      return "running";
    case kGWaiting:
      return "waiting";
    case kGSyscall:
      return "syscall";
    case kGDead:
      return "dead";
  }
  return "?";
}

void gstatus_bad(G* gp, uint32_t from, uint32_t to, uint32_t found) {
  char buf[160];
  char* e = buf + sizeof buf - 1;
  char* p = fmt_str(buf, e, "casgstatus: G ");
  p = fmt_u64(p, e, gp->goid);
  p = fmt_str(p, e, " from ");
  p = fmt_str(p, e, gstatus_name(from));
  p = fmt_str(p, e, " to ");
  p = fmt_str(p, e, gstatus_name(to));
  p = fmt_str(p, e, ", but it is ");
  p = fmt_str(p, e, gstatus_name(found));
  *p = 0;
  fatal(buf);
}

// A change of gp's scheduling attributes made by another thread (ksched.h),
// applied by gp itself on its way out of a scheduling point.
inline void ks_check(G* gp) {
  if (MNP_UNLIKELY(gp->ks_dirty.load(std::memory_order_acquire))) ksched_check_slow();
}

void park(WaitReason reason, ParkCommit commit, void* arg, Lock* release) {
  sysmon_ensure();  // the first wait: signals for a parked G need sysmon
  G* gp = tls_g;
  DCHECK(gp && !gp->is_g0);
  M* mp = hold_m(gp);  // carried through the switch (switch_from_g)
  if (release) release->unlock();
  gp->wait_reason = reason;
  // Program code that a wrapped call runs (a fopencookie read function
  // under fgets, an NSS module, a library's constructor) waits here, inside
  // the call, without a P (Chromium's browser died here of a null P). As a
  // handler does there (handler_begin), it leaves the call for the wait,
  // below, and goes back into it afterwards.
  int depth = static_cast<int>(gp->syscall_depth);
  if (MNP_UNLIKELY(depth != 0)) gp->syscall_depth = 0;
  // Lost the P in uncovered code (sysmon.cpp) and none is free: not
  // ensure_p, which would queue this G as runnable while the caller holds
  // the lock commit releases (every M that then ran a G wanting that lock
  // slept on it, each with its P: issue 8). The G is about to wait anyway:
  // park it from g0 and let the M go idle (m_loop) with no P.
  if (MNP_UNLIKELY(mp->p == nullptr) && !exitsyscall_fast(gp)) {
    casgstatus(gp, kGSyscall, kGRunning);  // on no queue
    SwitchArgs sa{gp, commit, arg, nullptr};
    mp->curg = nullptr;
    switch_from_g(mp, gp, nullptr, &mp->g0.ctx, park_commit_cb, &sa, &gp->park_time);
    gp->wait_reason = kWaitNone;
    if (MNP_UNLIKELY(depth != 0)) handler_end(gp, depth);
    return;
  }
  P* pp = mp->p;
  pp->parks.store(pp->parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  SwitchArgs sa{gp, commit, arg, pp};
  bool inherit;
  if (G* next = next_local_unwired(mp, gp, pp, false, take_preempt(gp), &inherit)) {
    switch_g(mp, pp, gp, next, inherit, park_commit_cb, &sa, &gp->park_time);
  } else {
    mp->curg = nullptr;
    switch_from_g(mp, gp, nullptr, &mp->g0.ctx, park_commit_cb, &sa, &gp->park_time);
  }
  gp->wait_reason = kWaitNone;
  // Handlers of signals that arrived on an M between Gs (and may be why
  // this G was woken).
  if (MNP_UNLIKELY(sigpend_any())) sigpend_run(nullptr, nullptr);
  if (MNP_UNLIKELY(depth != 0)) handler_end(gp, depth);
  ks_check(gp);
}

namespace {
void preempt_commit_cb(void* a) {
  auto* sa = static_cast<SwitchArgs*>(a);
  G* prev = sa->prev;
  casgstatus(prev, kGRunning, kGRunnable);
  if (sa->to_next) {
    runq_put(sa->pp, prev, true);
    return;
  }
  LockGuard lk(sched.lock);
  // A real-time G stopped at the end of its slice (the real-time bandwidth,
  // sysmon.cpp) waits behind the ordinary Gs, as the kernel's throttled
  // real-time threads wait for its ordinary ones.
  if (MNP_UNLIKELY(prev->ks_rt.load(std::memory_order_relaxed))) {
    globrunq_put_plain_locked(prev);
  } else {
    globrunq_put_locked(prev);
  }
}
}  // namespace

void preempt_switch() {
  G* gp = tls_g;
  uint32_t mark = take_mark(gp);
  bool slice_over = slice_ends(mark);
  M* mp = hold_m(gp);  // carried through the switch (switch_from_g)
  P* pp = mp->p;
  // A wired G with nothing else to run goes on: the way round through its
  // M's sleep and another M would only cost two thread switches. The P's
  // due timers first, as yield runs them: their Gs are something else to
  // run (a sleeper beside a wired G that computes never woke, and sysmon
  // marked and signalled the G again every 20 µs for it).
  if (MNP_UNLIKELY(gp->lockedm != nullptr)) {
    if (MNP_UNLIKELY(pp->timers.when0.load(std::memory_order_relaxed) != kNever)) timers_run(pp, nanotime());
    if (pp->runq.empty() && sched.runq_size.load(std::memory_order_relaxed) == 0) {
      m_release(mp);
      return;
    }
  }
  SwitchArgs sa{gp, nullptr, nullptr, pp, mark == kPreemptWake && gp->lockedm == nullptr};
  bool inherit;
  if (G* next = next_local_unwired(mp, gp, pp, true, slice_over, &inherit)) {
    switch_g(mp, pp, gp, next, inherit, preempt_commit_cb, &sa, nullptr);
  } else {
    mp->curg = nullptr;
    switch_from_g(mp, gp, nullptr, &mp->g0.ctx, preempt_commit_cb, &sa, nullptr);
  }
}

// How often a yield loop harvests the netpoller (yield): a reply costs
// its reader at most this long, an epoll_wait (about 1 us) in the loop
// costs at most 2% of it.
constexpr int64_t kYieldPollNs = 50 * 1000;

bool yield(bool at_mark) {
  G* gp = tls_g;
  DCHECK(gp && !gp->is_g0);
  ensure_p(gp);
  // Inside a wrapped call (program code it runs, park above): no P to give.
  if (MNP_UNLIKELY(gp->syscall_depth != 0)) return false;
  M* mp = hold_m(gp);  // carried through the switch (switch_from_g)
  P* pp = mp->p;
  bool inherit;
  SwitchArgs sa{gp, nullptr, nullptr, pp};
  // Gs waiting on fds: only Ms with nothing to run harvest the netpoller,
  // and sysmon every 10 ms, so a G that yields in a loop for a reply from
  // one (a pipe written, then sched_yield until the reader acts: GLib's
  // contexts test) waited 10 ms a reply at 1 P. Harvested here too, at
  // most once every kYieldPollNs.
  if (MNP_UNLIKELY(netpoll_worth_polling()) && nanotime() - netpoll_last_poll() >= kYieldPollNs) netpoll_poll_now();
  if (MNP_UNLIKELY(gp->lockedm != nullptr)) {
    // A wired G cannot switch to another G on its M: if anything else could
    // run, it goes to the tail and its M hands the P over (m_loop). The P's
    // due timers first, as next_local runs them for an unwired G: a wired
    // G that yields in a loop with nothing else queued here kept the P and
    // never ran them (GNAT's tasks, each wired by its name: main's 0.1 s
    // delay never ended while 20 tasks yielded, 1 run in 4 at 2 Ps).
    take_preempt(gp);
    if (MNP_UNLIKELY(pp->timers.when0.load(std::memory_order_relaxed) != kNever)) timers_run(pp, nanotime());
    if (pp->runq.empty() && sched.runq_size.load(std::memory_order_relaxed) == 0) {
      m_release(mp);
      return false;
    }
    mp->curg = nullptr;
    switch_from_g(mp, gp, nullptr, &mp->g0.ctx, yield_commit_cb, &sa, nullptr);
    ks_check(gp);
    return true;
  }
  uint32_t mark = take_mark(gp);
  sa.to_next = at_mark && mark == kPreemptWake;
  G* next = next_local(pp, true, slice_ends(mark), &inherit);
  if (!next && sched.runq_size.load(std::memory_order_relaxed) > 0) {
    LockGuard lk(sched.lock);
    inherit = false;
    next = globrunq_get_locked(pp, 0);
  }
  if (!next) {
    // Half of another P's ring: Gs waiting there while this P runs a G that
    // only yields. No M looks for work while every P runs a G, so without
    // this, Gs spread unevenly at their creation stay so (4 yield loops on
    // 2 Ps: 3 Gs took turns on one P, the fourth yielded alone on the
    // other). Not a victim's next: its owner is about to run it.
    inherit = false;
    for (uint32_t i = 1; i < sched.nprocs && !next; i++)
      next = steal_from(mp, &sched.allp[(pp->id + i) % sched.nprocs], false);
  }
  if (!next) {
    m_release(mp);
    return false;
  }
  if (MNP_UNLIKELY(next->lockedm != nullptr)) {
    mp->nextg = next;
    mp->curg = nullptr;
    switch_from_g(mp, gp, nullptr, &mp->g0.ctx, yield_commit_cb, &sa, nullptr);
    ks_check(gp);
    return true;
  }
  switch_g(mp, pp, gp, next, inherit, yield_commit_cb, &sa, nullptr);
  ks_check(gp);
  return true;
}

namespace {
// Queues gp on the caller's P, or on the global queue when the caller has
// none (an M between Ps, a thread that is no G). The caller's P is held
// still (m_hold) while its queue is pushed: only its owner pushes, and a
// handler of the program's that readied another G right here would push
// on it too. Returns whether gp went on a P.
// gp, being readied, waited kStarveNs or more for a mutex: the waker (its
// last holder) gives it the P, so that it takes the mutex before its
// waker takes it again. Without this a thread that unlocks and relocks a
// mutex in a loop (lock, sched_yield, unlock: sysbench's `threads` test)
// kept it for good and 56 of 64 threads waited seconds; natively the
// kernel's wake-up preemption runs the woken one first. Go's mutex hands
// itself over after the same 1 ms (its starvation mode).
constexpr int64_t kStarveNs = 1000 * 1000;
inline bool mutex_starved(G* gp) {
  uint64_t since = gp->lock_wait_since;
  return since != 0 && gp->wait_reason == kWaitMutex && tsc_span_ns(arch_cycles() - since) >= kStarveNs;
}

[[gnu::always_inline]] inline bool runq_put_current(G* gp, bool next) {
  G* cur = tls_g;
  M* cm = cur ? hold_m(cur) : nullptr;
  P* pp = cm ? cm->p : nullptr;
  if (pp) {
    runq_put(pp, gp, next);
    // Not a wired waker: each yield of one hands its P to another M.
    uint32_t none = kPreemptNone;
    if (next && !cur->is_g0 && cur->m == cm && cur->lockedm == nullptr &&
        cur->preempt.load(std::memory_order_relaxed) == kPreemptNone && !cur->ks_rt.load(std::memory_order_relaxed) &&
        gp->rt_rank == 0 && (cpu_stint_ns(cm, cur) >= kWakePreemptNs || mutex_starved(gp)))
      cur->preempt.compare_exchange_strong(none, kPreemptWake, std::memory_order_relaxed);  // not over sysmon's
  } else {
    LockGuard lk(sched.lock);
    globrunq_put_woken_locked(gp);
  }
  if (cm) m_release(cm);
  return pp != nullptr;
}
}  // namespace

void ready(G* gp, bool next) {
  for (;;) {
    uint32_t s = gp->status.load(std::memory_order_acquire);
    if (s == kGWaiting) {
      casgstatus(gp, kGWaiting, kGRunnable);  // only the one that took it off its wait list readies it
      break;
    }
    // Still on its way into park(): its on-top callback will flip it soon.
    // kGSyscall: it lost its P in uncovered code on that way (park then
    // makes it Running or parks it without one).
    if (s == kGRunning || s == kGSyscall) {
      cpu_relax();
      continue;
    }
    fatal("ready: G is not waiting");
  }
  bool on_p = runq_put_current(gp, next);
  // The one G of the process, readied onto a P's queue: that P's M (the
  // caller, on g0) runs it; another M would find nothing.
  if (!on_p || sched.ngsys_live.load(std::memory_order_relaxed) > 1) wakep();
}

void wakep() {
  // A spinner, which holds a P of its own, spares this wake-up: its spin
  // paid although it may find nothing (find_runnable; a pair handing a
  // mutex back and forth on one P). A store only when the flag changes:
  // readiers share the line. Either load may come first (the protocol
  // above: a readier that sees no spinner sees the P it left idle).
  if (sched.nmspinning.load(std::memory_order_seq_cst) != 0) {
    if (!sched.spin_spared_wake.load(std::memory_order_relaxed))
      sched.spin_spared_wake.store(true, std::memory_order_relaxed);
    return;
  }
  if (sched.npidle.load(std::memory_order_seq_cst) == 0) return;
  int32_t zero = 0;
  if (!sched.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  startm(nullptr, true);
}

// ---- Gs: creation, exit, reaping ----------------------------------------------

namespace {

// Free Gs keep their stack+TCB for reuse: a reuse costs no mapping, no
// guard and no fresh TCB. The first kWarmGs on the global list keep their
// pages too; past that a G's stack pages go back to the kernel
// (MADV_DONTNEED: one syscall, the memory stays, a later reuse costs a page
// fault); past gmem_global_cache_max() the memory is freed at once.
//
// Bounded caches. A burst of threads leaves its Gs cached; nothing in the
// cache is worth keeping once the burst is over. As Go's scavenger does for
// heap pages, sysmon (gfree_scavenge) frees every kScavengeNs the global
// free Gs that no gfget needed during the whole period (sched.gfree_low,
// the fewest on the list since it last looked), beyond kScavengeKeep. A P
// that goes idle moves its own free Gs beyond kPerPIdleKeep to the global
// list first (gfree_idle_trim), so that they are counted too. A steady
// create/exit load never sees the list drop to empty between two looks and
// keeps what it uses; BM_CreateJoin (one G at a time) lives in the P's
// cache and never touches the global list.
constexpr int32_t kWarmGs = 1024;
constexpr int64_t kScavengeNs = 250 * 1000 * 1000;
constexpr int32_t kScavengeKeep = 16;
constexpr int32_t kPerPIdleKeep = 16;
constexpr int kScavengeTrimAfter = 256;
constexpr int32_t kScavengeBatch = 512;

// Under gfree_lock, after ngfree went down.
inline void gfree_note_low_locked() {
  if (sched.ngfree < sched.gfree_low) sched.gfree_low = sched.ngfree;
}

constinit int64_t g_scavenge_last = 0;   // sysmon
constinit int32_t g_scavenge_debt = 0;   // sysmon: free Gs still to free this period
constinit int32_t g_scavenge_freed = 0;  // sysmon: freed this period

// Moves the P's free Gs beyond `keep` to the global list; those beyond
// gmem_global_cache_max() are freed instead.
void gfree_spill(P* pp, int32_t keep) {
  G* victims = nullptr;
  {
    LockGuard lk(sched.gfree_lock);
    while (pp->ngfree > keep) {
      G* g2 = pp->gfree;
      pp->gfree = g2->schedlink;
      pp->ngfree--;
      if (sched.ngfree >= gmem_global_cache_max()) {
        g2->schedlink = victims;
        victims = g2;
        continue;
      }
      g2->schedlink = sched.gfree;
      sched.gfree = g2;
      sched.ngfree++;
    }
  }
  while (victims) {
    G* next = victims->schedlink;
    gmem_free_batched(victims);
    victims = next;
  }
}

// The P's free list has no lock: its owner uses it, held still (m_hold)
// against a handler of the program's that would create or reap a G here.
void gfput_local(P* pp, G* gp) {
  gp->schedlink = pp->gfree;
  pp->gfree = gp;
  if (++pp->ngfree < kPerPFreeMax) return;
  gfree_spill(pp, kPerPFreeMax / 2);  // half to the global list
}

void gfput(G* gp) {
  G* cur = tls_g;
  casgstatus(gp, kGDead, kGIdle);
  if (sched.ngfree > kWarmGs) gmem_trim(gp);
  if (cur && cur->m) {
    M* cm = hold_m(cur);
    if (P* pp = cm->p) {
      gfput_local(pp, gp);
      m_release(cm);
      return;
    }
    m_release(cm);
  }
  G* victim = nullptr;
  {
    LockGuard lk(sched.gfree_lock);
    gp->schedlink = sched.gfree;
    sched.gfree = gp;
    if (++sched.ngfree > gmem_global_cache_max()) {
      victim = sched.gfree;
      sched.gfree = victim->schedlink;
      sched.ngfree--;
      gfree_note_low_locked();
    }
  }
  if (victim) gmem_free_batched(victim);
}

G* gfget_local(P* pp) {
  {
    if (!pp->gfree && sched.ngfree > 0) {
      LockGuard lk(sched.gfree_lock);
      while (pp->ngfree < kPerPFreeMax / 2 && sched.gfree) {
        G* g2 = sched.gfree;
        sched.gfree = g2->schedlink;
        sched.ngfree--;
        g2->schedlink = pp->gfree;
        pp->gfree = g2;
        pp->ngfree++;
      }
      gfree_note_low_locked();
    }
    if (G* gp = pp->gfree) {
      pp->gfree = gp->schedlink;
      pp->ngfree--;
      gp->schedlink = nullptr;
      return gp;
    }
    return nullptr;
  }
}

G* gfget() {
  G* cur = tls_g;
  if (M* cm = cur && cur->m ? hold_m(cur) : nullptr) {  // as in gfput
    if (P* pp = cm->p) {
      G* gp = gfget_local(pp);
      m_release(cm);
      return gp;
    }
    m_release(cm);
  }
  LockGuard lk(sched.gfree_lock);
  G* gp = sched.gfree;
  if (gp) {
    sched.gfree = gp->schedlink;
    sched.ngfree--;
    gfree_note_low_locked();
    gp->schedlink = nullptr;
  }
  return gp;
}

// Free Gs of other stack sizes (pthread_attr_setstacksize, setguardsize):
// Ruby's and the JVM's threads ask for 1 MiB, Rust's std::thread for 2 MiB.
// One global list for every size, searched for an exact layout: a
// program uses a size or two, and the list is short. At most kSizedMax
// Gs and kSizedBytesMax of mappings; past kSizedWarm a G's stack pages go
// back to the kernel as it is put. sysmon frees what no create needed
// for a period (gfree_scavenge), beyond kSizedKeep.
constexpr int32_t kSizedMax = 64;
constexpr size_t kSizedBytesMax = size_t{256} << 20;
constexpr int32_t kSizedWarm = 16;
constexpr int32_t kSizedKeep = 4;
constinit size_t g_gfree_sized_bytes = 0;  // gfree_lock
// Some G on the sized list has its stack pages (gfree_lock; read racily).
constinit bool g_gfree_sized_warm = false;

void gfput_sized(G* gp) {
  casgstatus(gp, kGDead, kGIdle);
  bool warm = sched.ngfree_sized < kSizedWarm;  // racy read: a hint
  if (!warm) gmem_trim(gp);
  {
    LockGuard lk(sched.gfree_lock);
    if (sched.ngfree_sized < kSizedMax && g_gfree_sized_bytes + gp->map_size <= kSizedBytesMax) {
      g_gfree_sized_warm |= warm;
      gp->schedlink = sched.gfree_sized;
      sched.gfree_sized = gp;
      sched.ngfree_sized++;
      g_gfree_sized_bytes += gp->map_size;
      return;
    }
  }
  gmem_free_batched(gp);
}

G* gfget_sized(size_t stack_size, size_t guard) {
  if (sched.ngfree_sized == 0) return nullptr;  // racy read: a miss is a fresh G
  LockGuard lk(sched.gfree_lock);
  for (G** link = &sched.gfree_sized; G* gp = *link; link = &gp->schedlink) {
    if (!gmem_layout_matches(gp, stack_size, guard)) continue;
    *link = gp->schedlink;
    gp->schedlink = nullptr;
    sched.ngfree_sized--;
    g_gfree_sized_bytes -= gp->map_size;
    if (sched.ngfree_sized < sched.gfree_sized_low) sched.gfree_sized_low = sched.ngfree_sized;
    return gp;
  }
  return nullptr;
}

// Whether the scavenger has free Gs to look at again (racy reads).
bool gfree_left() { return sched.ngfree > kScavengeKeep || sched.ngfree_sized > kSizedKeep || g_gfree_sized_warm; }

// sysmon, each scavenge period: if some sized Gs lay unused for the whole
// period (the fewest on the list meanwhile), frees them beyond kSizedKeep
// and gives back the stack pages of those kept. Those no create took lie
// at the cold end, the tail; the head, kept, holds the most recently put.
// The kept ones are off the list while trimmed: no create can take one
// meanwhile. True if some memory is still to give back (gmem_reclaim).
bool gfree_sized_scavenge() {
  G* list = nullptr;
  int32_t keep = 0;
  {
    LockGuard lk(sched.gfree_lock);
    int32_t idle = sched.gfree_sized_low;
    sched.gfree_sized_low = sched.ngfree_sized;
    if (idle == 0) return false;
    keep = sched.ngfree_sized - (idle > kSizedKeep ? idle - kSizedKeep : 0);
    list = sched.gfree_sized;
    sched.gfree_sized = nullptr;
    sched.ngfree_sized = 0;
    g_gfree_sized_bytes = 0;
    g_gfree_sized_warm = false;
  }
  G* kept = nullptr;
  G** kept_tail = &kept;
  int32_t nkept = 0;
  size_t kept_bytes = 0;
  bool freed = false;
  while (list) {
    G* gp = list;
    list = gp->schedlink;
    if (nkept < keep) {
      gmem_trim(gp);
      *kept_tail = gp;
      kept_tail = &gp->schedlink;
      nkept++;
      kept_bytes += gp->map_size;
    } else {
      gmem_free_deferred(gp);
      freed = true;
    }
  }
  if (kept) {
    LockGuard lk(sched.gfree_lock);
    *kept_tail = sched.gfree_sized;
    sched.gfree_sized = kept;
    sched.ngfree_sized += nkept;
    g_gfree_sized_bytes += kept_bytes;
    sched.gfree_sized_low = sched.ngfree_sized;
  }
  return freed && gmem_reclaim();
}

// The P's owner, about to give the P up for lack of work.
void gfree_idle_trim(P* pp) {
  if (pp->ngfree <= kPerPIdleKeep) return;
  gfree_spill(pp, kPerPIdleKeep);
}

// Not instrumented by ASan, whose call before the noreturn g_exit_current
// (__asan_handle_no_return) asks glibc's pthread_getattr_np for the
// stack of a G it does not know: in the unit tests nothing interposes it,
// and glibc's asks the kernel for the G's made-up thread id (ESRCH).
__attribute__((no_sanitize("address"))) MNP_GBASE void g_trampoline(void* arg) {
  G* gp = static_cast<G*>(arg);
  tcb_thread_start_on_current();
  altstack_settle(gp->m, gp);  // the last G's may be on this thread yet
  g_load_kmask(gp);
  m_release(gp->m);  // the switch that started it (switch_from_g, execute)
  // Scheduling attributes given at creation or set by another thread since
  // (core/ksched.h).
  if (MNP_UNLIKELY(gp->ks_dirty.load(std::memory_order_acquire))) ksched_check_slow();
  if (MNP_UNLIKELY(gp->ks_creator != nullptr)) ksched_started(gp);  // a creator waits for that
  // The outermost cancellation buffer: glibc's pthread_exit (and
  // cancellation) unwinds through cleanup handlers and C++ destructors and
  // then long-jumps here, as it does in its own start_thread.
  __pthread_unwind_buf_t ub;
  int not_first = __sigsetjmp(reinterpret_cast<struct __jmp_buf_tag*>(ub.__cancel_jmp_buf), 0);
  void* result;
  if (!not_first) {
    __pthread_register_cancel(&ub);
    result = gp->start_fn(gp->start_arg);
  } else {
    san_unpoison_below(gp->stack_lo);
    result = tcb_field<void*>(gp->tcb, tcbo::kResult);
  }
  g_exit_current(result);
}

// Marks gp finished and wakes its joiner; returns the previous join word.
uintptr_t publish_exit(G* gp) {
  uintptr_t old = gp->join.exchange(kExited, std::memory_order_acq_rel);
  if (old == kKernelJoiner) {
    gp->exited.store(1, std::memory_order_release);
    futex_wake(&gp->exited, 1);
  } else if (old != kJoinable && old != kDetached) {
    ready(reinterpret_cast<G*>(old), true);
  }
  return old;
}

// The last switch of an ending G (g_exit_current), to the next G or to g0:
// on the new stack, with the ending G off its own.
struct ExitArgs {
  G* gp;
  P* pp;          // the P it ended on
  bool detached;  // nobody will join it: reaped here
};
void exit_commit_cb(void* a) {
  auto* ea = static_cast<ExitArgs*>(a);
  G* gp = ea->gp;
  P* pp = ea->pp;
  bool detached = ea->detached;  // *ea is on gp's stack, free once gp is Dead
  gp->m = nullptr;
  // As the kernel clears a thread's id in its descriptor when it ends
  // (CLONE_CHILD_CLEARTID): glibc and programs read it as "has ended".
  // Only now, with the G off its stack: its exit path may still take
  // locks that record the owner's id. Before Dead: a joiner may reap (and
  // reuse) the G as soon as it is Dead.
  tcb_field<int>(gp->tcb, tcbo::kTid) = 0;
  casgstatus(gp, kGRunning, kGDead);
  if (detached) g_reap(gp);
  // The P's due timers, as park_commit_cb runs them: a chain of Gs that
  // each make the next and end switches G to G and would hold them back.
  if (MNP_UNLIKELY(pp && pp->timers.when0.load(std::memory_order_relaxed) != kNever)) timers_run(pp, nanotime());
}

}  // namespace

// glibc's malloc-cache slots in a thread's static TLS are found on a fresh
// TCB (core/tcb.h), on the first pthread_create: a process that never makes
// a thread does not pay for the probe's stack, TCB and malloc arena (at
// start-up it took 0.3-1.3 ms of a /bin/true here). The probe runs on the
// caller's kernel thread as the caller's continuation, so its TCB carries
// the caller's thread id: a lock the caller holds that glibc keys by id is
// the probe's too. (The first try at this used a new id and dladdr, and
// numpy on OpenBLAS, whose constructor makes threads inside dlopen, hung;
// most likely the probe's dladdr waited for the loader's lock, held by its
// own caller (not reproduced). The probe no longer takes that lock either:
// tcb.cpp uses _dl_find_object.)
namespace {
constinit Lock g_probe_lock;
constinit std::atomic<bool> g_malloc_probed{false};

void probe_malloc_slots_once() {
  if (g_malloc_probed.load(std::memory_order_acquire)) return;
  LockGuard lk(g_probe_lock);
  if (g_malloc_probed.load(std::memory_order_relaxed)) return;
  auto caller_tid = static_cast<uint32_t>(tcb_field<int>(reinterpret_cast<void*>(arch_get_fs()), tcbo::kTid));
  G* probe = gmem_alloc(256 * 1024, 4096, nullptr, caller_tid);
  if (probe) {
    struct ProbeCtx {
      Context back;
      G* g;
    } pc{};
    pc.g = probe;
    ctx_make(
        &probe->ctx, probe->stack_lo, gmem_stack_top(probe), reinterpret_cast<uintptr_t>(probe->tcb),
        [](void* a) {
          auto* c = static_cast<ProbeCtx*>(a);
          tcb_thread_start_on_current();
          tcb_probe_malloc_slots_on_current();
          mnp_ctx_switch(&c->g->ctx, &c->back, nullptr, nullptr);
        },
        &pc);
    pc.back.fs = arch_get_fs();
    // No handler may run on the probe's TLS, which is no thread's.
    uint64_t all = ~uint64_t{0}, old = 0;
    raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), reinterpret_cast<long>(&old), 8);
    mnp_ctx_switch(&pc.back, &probe->ctx, nullptr, nullptr);
    raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, 8);
    gmem_free(probe);
  }
  g_malloc_probed.store(true, std::memory_order_release);
}
}  // namespace

int newproc(const GSpec& spec, G** out) {
  ErrnoKeeper keep_errno;  // gmem_alloc and tcb_reinit call into libc
  sysmon_ensure();         // the second thread: glibc turns multi-threaded before it runs
  preempt_setup();         // and preemption may matter from now on
  probe_malloc_slots_once();
  const Config& cfg = config();
  size_t ss = spec.stack_size ? spec.stack_size : cfg.stack_size;
  size_t guard = spec.guard_size == static_cast<size_t>(-1) ? cfg.guard_size : spec.guard_size;
  uint8_t kind = spec.user_stack                                   ? kGCacheNone
                 : ss == cfg.stack_size && guard == cfg.guard_size ? kGCacheDefault
                                                                   : kGCacheSized;
  G* gp = kind == kGCacheDefault ? gfget() : kind == kGCacheSized ? gfget_sized(ss, guard) : nullptr;
  if (gp) {
    // A new thread, a new id: a signal or call aimed at the id of the thread
    // that used this G before must not reach this one.
    gp->fake_tid = gmem_new_tid();
    gp->clear_tid = nullptr;
    gp->sigwait_bits.store(0, std::memory_order_relaxed);  // a cancelled sigwait leaves it set
    gp->in_handler = 0;                                    // the old G may have ended inside a handler
    tcb_reinit(gp->tcb, gp->map_base, gp->map_size, gp->guard_size, gp->fake_tid);
    mcache_reuse(gp);
  } else {
    gp = gmem_alloc(ss, guard, spec.user_stack);
    if (!gp) return EAGAIN;
    gp->cache_kind = kind;
  }
  gmem_set_tls_g(gp);
  gp->start_fn = spec.fn;
  gp->start_arg = spec.arg;
  gp->result = nullptr;
  gp->join.store(spec.detached ? kDetached : kJoinable, std::memory_order_relaxed);
  gp->exited.store(0, std::memory_order_relaxed);
  gp->wait_reason = kWaitNone;
  gp->name[0] = 0;
  ksched_reset(gp);
  gp->syscall_depth = 0;
  gp->exiting = false;
  gp->robust_list = nullptr;
  gp->preempt.store(kPreemptNone, std::memory_order_relaxed);
  gp->in_call_mask = false;  // a reused G's last thread may have been cancelled inside a masked call
  gp->deep_walk.store(false, std::memory_order_relaxed);  // a reused G's was its last thread's
  gp->ret_hook_ra = 0;                                    // and so was a return hook it left pending
  gp->ret_hook_slot = nullptr;
  cpu_init_g(gp, nullptr);
  // Natively a thread starts with its creator's mask (or the attribute's),
  // and nothing pending.
  if (spec.sigmask) {
    g_sigmask_init(gp, spec.sigmask);
  } else if (G* cur = get_user_g()) {
    g_sigmask_init(gp, &cur->sigmask);
  } else {
    sigset_t k;
    raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&k), 8);
    g_sigmask_init(gp, &k);
  }
  gp->goid = sched.goid_gen.fetch_add(1, std::memory_order_relaxed) + 1;
  ctx_make(&gp->ctx, gp->stack_lo, gmem_stack_top(gp), reinterpret_cast<uintptr_t>(gp->tcb), g_trampoline, gp);
  sched.ngsys_live.fetch_add(1, std::memory_order_relaxed);
  casgstatus(gp, kGIdle, kGRunnable);
  *out = gp;
  // The creator learns the handle before the new G can run (the interposer
  // stores it into *thread first).
  return 0;
}

void newproc_start(G* gp) {
  runq_put_current(gp, true);
  wakep();
}

bool gfree_scavenge(int64_t now) {
  if (g_scavenge_debt == 0) {
    if (now - g_scavenge_last < kScavengeNs) return gfree_left();
    g_scavenge_last = now;
    bool left = gfree_sized_scavenge();
    LockGuard lk(sched.gfree_lock);
    g_scavenge_debt = sched.gfree_low > kScavengeKeep ? sched.gfree_low - kScavengeKeep : 0;
    sched.gfree_low = sched.ngfree;
    if (g_scavenge_debt == 0) return left || gfree_left();
  }
  // At most kScavengeBatch a round: sysmon has other work (retaking Ps,
  // preemption), and freeing costs 50-100 us a G here (TLB shootdowns).
  G* list = nullptr;
  {
    LockGuard lk(sched.gfree_lock);
    // The head is the most recently freed (warm, resident); the cold tail
    // is trimmed already. Freeing from the head gives back the most.
    int32_t n = g_scavenge_debt < kScavengeBatch ? g_scavenge_debt : kScavengeBatch;
    for (; n > 0 && sched.gfree; n--) {
      G* gp = sched.gfree;
      sched.gfree = gp->schedlink;
      sched.ngfree--;
      gp->schedlink = list;
      list = gp;
      g_scavenge_debt--;
    }
    if (!sched.gfree) g_scavenge_debt = 0;
    if (sched.ngfree < sched.gfree_low) sched.gfree_low = sched.ngfree;
  }
  while (list) {
    G* next = list->schedlink;
    gmem_free_deferred(list);
    list = next;
    g_scavenge_freed++;
  }
  gmem_reclaim();
  // Each freed G's TLS block vector (glibc's dtv) was malloc'd; thousands
  // of them freed leave the heap full of holes that glibc gives back only
  // from its top (100,000 threads: 5-10 MiB kept). malloc_trim returns the
  // free pages anywhere in the heap. It takes the arena locks; no G holds
  // one while it is stopped (preemption never stops a G inside libc).
  if (g_scavenge_debt == 0) {
    if (g_scavenge_freed >= kScavengeTrimAfter) malloc_trim(0);
    g_scavenge_freed = 0;
  }
  return g_scavenge_debt > 0 || gfree_left();
}

void g_reap(G* gp) {
  if (gp->is_main) return;
  // The ending G published its exit just before its last switch
  // (g_exit_current), whose commit makes it Dead: a joiner may get here
  // first, by a few hundred nanoseconds unless that M lost its CPU. Spin,
  // yield, then sleep: a real-time joiner's sched_yield alone would never
  // let an ordinary thread on its CPU finish the switch.
  for (int spins = 0;; spins++) {
    uint32_t s = gp->status.load(std::memory_order_acquire);
    if (s == kGDead) break;
    if (s != kGRunning) fatal("g_reap: G is not dead");
    if (spins < 100) {
      cpu_relax();
    } else if (spins < 200) {
      raw_syscall(SYS_sched_yield);
    } else {
      raw_sleep_ns(20 * 1000);
    }
  }
  sigpend_forget(gp);  // one sent to it while it was exiting
  if (gp->cache_kind == kGCacheDefault) {
    gfput(gp);
  } else if (gp->cache_kind == kGCacheSized) {
    gfput_sized(gp);
  } else {
    gmem_free(gp);
  }
}

namespace {
MNP_START_DATA constinit GExitHook g_exit_hook = nullptr;
}
MNP_STARTUP void set_g_exit_hook(GExitHook hook) { g_exit_hook = hook; }

[[noreturn]] void g_exit_current(void* result) {
  G* gp = tls_g;
  gp->result = result;
  tcb_thread_exit_cleanup(gp->tcb);
  if (g_exit_hook) g_exit_hook(gp);
  // Out of the live count before its mask leaves the blockers' counts: an
  // M that goes idle in between then blocks too much for a moment (a
  // signal waits), never too little (idle_kmask: a signal every G blocks,
  // unblocked on an idle M, is taken there; one the program ignores to
  // read it from a signalfd is then discarded). Both before anyone can
  // learn of the end (clear_tid, publish_exit): a thread that blocks a
  // signal once it has joined this one finds it blocked by every G
  // (sigmask.cpp, note_all_block), as natively, where an ended thread
  // takes no signal.
  gp->exiting = true;
  bool last = sched.ngsys_live.fetch_sub(1, std::memory_order_acq_rel) == 1;
  g_sigmask_drop(gp);
  sigpend_forget(gp);                              // natively its pending signals go with it
  if (std::atomic<uint32_t>* w = gp->clear_tid) {  // what the kernel does at a thread's exit
    gp->clear_tid = nullptr;
    w->store(0, std::memory_order_release);
    sema_wake(w, 1);
  }
  // The last thread to finish ends the process, as with native threads.
  if (last) exit(0);
  if (gp->is_main) {
    // The main thread's stack and TCB are not ours to reuse: park forever.
    publish_exit(gp);
    park(
        kWaitForever, [](G*, void*) { return true; }, nullptr);
    fatal("main G woke after exit");
  }
  ensure_p(gp);
  // Held from here on (never released by this G: what this M switches to
  // goes on with it): no handler of the program's may run on this G once
  // its end is published, nor move it to another M.
  M* mp = hold_m(gp);
  mcache_exit(gp, mp->p);
  if (MNP_UNLIKELY(gp->lockedm != nullptr)) {
    // Natively the kernel thread ends here; what the G left on its M ends
    // with that M (mexit). The G memory may be reused: no wiring left on it.
    gp->lockedm = nullptr;
    gp->lockcount = 0;
    gp->wired_for_life = gp->ks_wired = false;
    gp->wired_children = 0;
    mp->lockedg = nullptr;
    mp->dying = true;
  }
  // Natively its alternate stack goes with the thread, and the program may
  // free the memory once the thread is gone (Ruby does not disable it
  // first): off this thread before the end is published.
  if (MNP_UNLIKELY(gp->own_altstack || gp->altstack_virtual)) {
    altstack_leave(mp, nullptr);
    altstack_exit(gp);
  }
  // The joiner learns of the end now, before the last switch, so that one
  // parked on this P is readied into its next and gets the switch itself
  // (one FS base write instead of two by way of g0); it reaps this G only
  // once the switch's commit made it Dead (g_reap).
  ExitArgs ea{gp, mp->p, false};
  if (publish_exit(gp) == kDetached) {
    gp->join.store(kDetachedDone, std::memory_order_relaxed);
    ea.detached = true;
  }
  if (!mp->dying && ea.pp) {
    bool inherit;
    if (G* next = next_local_unwired(mp, gp, ea.pp, false, take_preempt(gp), &inherit))
      switch_g(mp, ea.pp, gp, next, inherit, exit_commit_cb, &ea, nullptr);
  }
  mp->curg = nullptr;
  cpu_switch(mp, gp, nullptr, cpu_switch_tsc());
  count_fs_write(mp, &gp->ctx, &mp->g0.ctx);
  mnp_ctx_switch(&gp->ctx, &mp->g0.ctx, exit_commit_cb, &ea);
  fatal("dead G resumed");
}

G* main_g() { return &main_g_storage; }

void wire_take() {
  G* gp = get_user_g();
  if (!gp || !runtime_up) return;
  if (gp->lockcount++ == 0) {
    M* mp = gp->m;
    gp->lockedm = mp;
    mp->lockedg = gp;
  }
}

MNP_STARTUP void wire_drop() {
  G* gp = get_user_g();
  if (!gp || !runtime_up) return;
  if (gp->lockcount == 0) fatal("wire_drop: G is not wired");
  if (--gp->lockcount == 0) {
    gp->lockedm->lockedg = nullptr;
    gp->lockedm = nullptr;
  }
}

// M0 never exits (mexit: the process's leader must stay). A G other than
// main that is about to wire itself there for state whose effects come
// when its thread ends (a fork child's parent-death signal; a tracer's
// tracees, released or killed with PTRACE_O_EXITKILL) would never have
// them, and a name it set would be the leader's, which ps shows as the
// process's. So it first moves to an M of its own, made here without a P:
// the G is queued, already wired to it, and whichever M pops it hands that
// M its P (startlockedm), as for any wired G.
void wire_leave_m0(G* gp) {
  // Not from program code that a wrapped call runs (no P to switch with).
  if (gp == &main_g_storage || gp->lockcount != 0 || gp->syscall_depth != 0) return;
  ensure_p(gp);
  M* mp = hold_m(gp);
  if (mp != &m0_storage) {
    m_release(mp);
    return;
  }
  // The new M sleeps until the G is handed to it (mstart: an M with a
  // wired G takes no P). The M stays held until the switch: no handler
  // runs on the G meanwhile (a fork there would move it twice).
  M* nm = allocm();
  m_init_mask(nm);
  nm->lockedg = gp;
  m_thread_start(nm);
  gp->lockedm = nm;
  SwitchArgs sa{gp, nullptr, nullptr, mp->p};
  mp->curg = nullptr;
  switch_from_g(mp, gp, nullptr, &mp->g0.ctx, yield_commit_cb, &sa, nullptr);
  ks_check(gp);
}

bool still_one_thread(const G* gp) {
  // One G and one kernel thread: main in a process that never made a thread
  // (a second G starts sysmon, newproc), or the forking G in a fork child,
  // which often sets such state just before it execs.
  return gp && !sysmon_up.load(std::memory_order_acquire) && sched.mcount.load(std::memory_order_relaxed) == 1 &&
         sched.ngsys_live.load(std::memory_order_relaxed) == 1;
}

void wire_for_life(bool creds, bool inherited) {
  G* gp = get_user_g();
  if (!gp || !runtime_up || gp->wired_for_life) return;
  // A process that is still one thread (still_one_thread: one G on the one
  // M, no runtime thread yet). Every thread made later is made from this
  // one, so natively each
  // inherits what this thread sets now (a name, no_new_privs, a seccomp
  // filter, namespaces), and the runtime's threads, made later, inherit it
  // just the same: the state is the whole process's from here on, and
  // neither wiring nor sysmon is needed for it. Chromium's zygote sets
  // PR_SET_NO_NEW_PRIVS first thing and forks only while it is one thread;
  // sysmon, started for this, made it two (it died at a CHECK). State no new
  // thread inherits (a parent-death signal, a tracer) still wires the G to
  // its thread, still without sysmon, which does not inherit it either.
  if (still_one_thread(gp)) {
    if (inherited) return;
    gp->wired_for_life = true;
    wire_take();
    return;
  }
  // The state about to land on this thread (a name, seccomp, namespaces) is
  // inherited by threads it creates: sysmon, which creates the threads of
  // new Ms for wired ones, must exist before it. Credentials are the
  // exception (sched.h): started before, sysmon kept root's capabilities
  // while setpriv dropped them from its only thread, and the setresgid
  // that followed aborted in glibc (one thread succeeded, one failed).
  if (!creds) sysmon_ensure();
  wire_leave_m0(gp);
  gp->wired_for_life = true;
  wire_take();
}

MNP_STARTUP void wire_after_fork_child(G* gp) {
  gp->lockcount -= gp->wired_children;
  gp->wired_children = 0;
  if (gp->lockcount == 0 && gp->lockedm) {
    gp->lockedm->lockedg = nullptr;
    gp->lockedm = nullptr;
  }
}

MNP_STARTUP void set_sig_keep_hook(void (*hook)(int, const siginfo_t*)) { g_sig_keep_hook = hook; }

bool m_signal_defer(int sig, siginfo_t** si, siginfo_t* buf) {
  M* mp = m_of_thread();
  if (!mp || sig < 1 || sig > 64) return false;
  uint64_t b = sig_bit(sig);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (mp->locks != 0 || tls_g->mhold != 0) {
    // A standard signal already held back merges with this one, as the
    // kernel merges pending ones; the first siginfo is kept.
    if (!(mp->sig_deferred & b)) {
      if (*si) mp->sig_info[sig] = **si;
      else mp->sig_info[sig] = siginfo_t{};
      std::atomic_signal_fence(std::memory_order_seq_cst);
      mp->sig_deferred = mp->sig_deferred | b;
    }
    return true;
  }
  if (mp->sig_redeliver & b) {
    mp->sig_redeliver = mp->sig_redeliver & ~b;
    *buf = mp->sig_info[sig];
    *si = buf;
  }
  return false;
}

void ensure_p_if_g() {
  G* gp = get_user_g();
  if (gp && runtime_up && gp->m) ensure_p(gp);
}

void newm_drain() {
  if (MNP_LIKELY(g_newm_pending.load(std::memory_order_relaxed) == nullptr)) return;
  M* mp = g_newm_pending.exchange(nullptr, std::memory_order_acquire);
  while (mp) {
    M* next = mp->newmlink;
    m_thread_start(mp);
    mp = next;
  }
}
int os_thread_start(void* (*fn)(void*), void* arg) { return os_thread_create ? os_thread_create(fn, arg) : -1; }

namespace {
void exitsyscall_park_cb(void* a) {
  G* gp = static_cast<G*>(a);
  gp->m = nullptr;
  casgstatus(gp, kGSyscall, kGRunnable);
  {
    LockGuard lk(sched.lock);
    globrunq_put_locked(gp);
  }
  wakep();
}
}  // namespace

// The G returned from a syscall and no P is free: queue it globally and let
// this M (now without a P) go idle from its g0. The caller holds the M
// (hold_m), which the switch carries.
void exitsyscall_park(G* gp) {
  M* mp = gp->m;
  mp->curg = nullptr;
  switch_from_g(mp, gp, nullptr, &mp->g0.ctx, exitsyscall_park_cb, gp, nullptr);
}

namespace {
// In a child of fork() only the forking kernel thread exists, running the G
// that called fork. Rebuild the scheduler around it: this M alone, its P,
// every other P idle and empty, no other G alive (as with native threads,
// the others simply do not exist in the child). Locks are reset: the Ms that
// held them are gone.
// Before fork: the forking G must hold a P (it may have lost it to sysmon's
// detection while in uncovered code); the child then keeps exactly that P.
// Compacted memory is put back first (core/compact.h: the child's copy
// would read zeros there).
MNP_STARTUP void before_fork() {
  G* gp = get_user_g();
  if (runtime_up && gp && gp->syscall_depth == 0) ensure_p(gp);
  compact_before_fork();
}

MNP_STARTUP void after_fork_parent() { compact_after_fork_parent(); }

void after_fork_reset_sched(M* mp);

MNP_STARTUP void after_fork_child() {
  compact_after_fork_child();
  G* gp = tls_g;
  if (!runtime_up || !gp || !gp->m) return;
  M* mp = gp->m;
  mp->tid = raw_gettid();
  // The forking thread is the child's only one, and natively its id is the
  // child's pid (fork wrote that into the TCB already).
  if (!gp->is_g0) gp->fake_tid = static_cast<uint32_t>(mp->tid);
  if (!mp->p) {  // lost it between the prepare handler and the fork itself
    P* pp = mp->oldp ? mp->oldp : &sched.allp[0];
    mp->oldp = nullptr;
    pp->m = mp;
    mp->p = pp;
    pp->status.store(kPRunning, std::memory_order_relaxed);
    if (!gp->is_g0) casgstatus(gp, kGSyscall, kGRunning);
  }
  // A runtime that never started sysmon never had a second G or M, nor a
  // park, nor a timer (each starts sysmon first): the scheduler's state is
  // what start-up left, with nothing of other threads to forget. Rewriting it
  // anyway cost the child a copy-on-write fault per page (about 15 us each
  // on the no-FSGSBASE VM) before the exec most fork children make next.
  if (sysmon_up.load(std::memory_order_acquire)) after_fork_reset_sched(mp);
  mcache_after_fork(gp->is_g0 ? nullptr : gp, mp->p);
  // Every other module: reset locks other threads may have held, forget
  // waiters that do not exist here, restart sysmon and the netpoller. The
  // handle table's first (gmem_after_fork): gmem_alloc below takes its
  // lock, which a thread of the parent's may have held at the fork.
  sema_after_fork();
  gmem_after_fork(gp->is_g0 ? nullptr : gp);
  // glibc's fork handler kept only THREAD_SELF — the forking G's TCB — on its
  // thread list and put every other thread's stack in its cache, including
  // the stack and TCB this M's scheduler runs on if glibc made its thread
  // (M0's are ours, and so is a thread mthread_create made). The first
  // pthread_create would hand them out again: give the scheduler a fresh
  // stack and TCB of our own, and remember the G's TCB as the one glibc now
  // knows for this kernel thread (SIGSETXID wrapper).
  mp->glibc_tcb = gp->tcb;
  if (mp != &m0_storage && !mthread_is_raw(mp)) {
    G* sys = gmem_alloc(256 * 1024, 4096, nullptr, static_cast<uint32_t>(mp->tid));
    if (!sys) fatal("fork child: cannot allocate a scheduler stack");
    mp->g0.tcb = sys->tcb;
    mp->g0.stack_lo = sys->stack_lo;
    mp->g0.stack_size = sys->stack_size;
    gmem_set_tls_g_at(sys->tcb, &mp->g0);
    ctx_make(&mp->g0.ctx, sys->stack_lo, gmem_stack_top(sys), reinterpret_cast<uintptr_t>(sys->tcb), m0_g0_entry, mp);
  }
  netpoll_after_fork();
  if (!gp->is_g0) netpoll_signal_fork_child(gp);  // the kernel's main thread now runs this G
  sigpend_after_fork();                           // a child starts with no pending signals
  sigmask_after_fork(tls_g);
  // The child's kernel thread starts with a CPU clock of 0, and so does its
  // thread natively.
  if (!gp->is_g0) cpu_init_g(gp, mp);
  cpu_stale(mp);
  sysmon_after_fork();
}

// The scheduler's state in a fork child: only the forking M (mp) and its P
// are left; every queue, idle list and timer of the parent's is forgotten.
void after_fork_reset_sched(M* mp) {
  sched.lock.reset_in_child();
  sched.gfree_lock.reset_in_child();
  mp->alllink = nullptr;
  mp->spinning = false;
  mp->nextp = nullptr;
  mp->pokes.store(0, std::memory_order_relaxed);  // sysmon's, in the parent
  mp->nextg = nullptr;
  g_newm_pending.store(nullptr, std::memory_order_relaxed);  // the parent's Ms to be
  mp->park.clear();
  sched.allm.store(mp, std::memory_order_relaxed);
  sched.mcount.store(1, std::memory_order_relaxed);
  sched.midle = nullptr;
  sched.nmidle = 0;
  sched.nmspinning.store(0, std::memory_order_relaxed);
  sched.runq_head = sched.runq_tail = nullptr;
  sched.runq_size.store(0, std::memory_order_relaxed);
  sched.rtq_head = nullptr;
  sched.rtq_size.store(0, std::memory_order_relaxed);
  sched.wokeq_last = nullptr;
  sched.wokeq_size.store(0, std::memory_order_relaxed);
  sched.pidle = nullptr;
  sched.npidle.store(0, std::memory_order_relaxed);
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    pp->runq.head.store(0, std::memory_order_relaxed);
    pp->runq.tail.store(0, std::memory_order_relaxed);
    pp->runq.next.store(nullptr, std::memory_order_relaxed);
    pp->on_idle_list = false;
    pp->link = nullptr;
    // Timers belong to Gs that do not exist in the child.
    pp->timers.lock.reset_in_child();
    pp->timers.n = 0;
    pp->timers.when0.store(kNever, std::memory_order_relaxed);
    pp->sysmon_m = nullptr;
    if (pp != mp->p) {
      pp->m = nullptr;
      pidleput_locked(pp);
    }
  }
  sched.ngsys_live.store(1, std::memory_order_relaxed);
  sched.njoining.store(0, std::memory_order_relaxed);  // no joiner survived the fork
  sched.timer_m = nullptr;
  sched.timer_m_until.store(kNever, std::memory_order_relaxed);
  mthread_after_fork_child(mp);
}
}  // namespace

// libc's own entry, which is all pthread_atfork does: that wrapper is linked
// into the shim from libc_nonshared.a at the end of its text, a page every
// process would fault in at start-up for it alone.
extern "C" int __register_atfork(void (*prepare)(), void (*parent)(), void (*child)(), void* dso);
extern "C" void* __dso_handle MNP_HIDDEN;

MNP_STARTUP void sched_install_fork_handlers() {
  __register_atfork(before_fork, after_fork_parent, after_fork_child, __dso_handle);
}

uint64_t stat_mcount() { return static_cast<uint64_t>(sched.mcount.load()); }

MNP_STARTUP void set_os_thread_create(int (*fn)(void* (*)(void*), void*)) { os_thread_create = fn; }

MNP_STARTUP bool sched_init_main() {
  if (!tcb_runtime_init()) return false;
  arch_init();
  config_init();
  const Config& cfg = config();
  sched.nprocs = cfg.procs;
  long r = raw_syscall6(SYS_mmap, 0, sizeof(P) * cfg.procs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) return false;
  sched.allp = static_cast<P*>(reinterpret_cast<void*>(r));
  for (uint32_t i = 0; i < cfg.procs; i++) {
    P* pp = new (&sched.allp[i]) P;  // default-initialised: the run ring stays unwritten (zero)
    pp->id = i;
  }
  // M0 is this (initial) kernel thread. The main G keeps the original stack
  // and TCB; M0's scheduler loop gets a fresh stack and TCB of its own.
  M* m0 = &m0_storage;
  m0->sig_info = m0_sig_info;
  m0->g0.is_g0 = true;
  m0->g0.m = m0;
  initgstatus(&m0->g0, kGRunning);  // before runtime_up: no other thread knows it
  m0->id = static_cast<uint32_t>(sched.mcount.fetch_add(1));
  // The cycle counter, not nanotime(): the clock's first read faults in the
  // vDSO's pages, two page faults a one-thread process need not take.
  m0->rand = 0x9E3779B97F4A7C15ULL ^ arch_cycles();
  m0->tid = raw_gettid();
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&g_start_mask), 8);
  m0->glibc_tcb = reinterpret_cast<void*>(arch_get_fs());
  sched.allm.store(m0, std::memory_order_release);
  // M0's scheduler stack and TCB: made by m0_g0_ensure, on first need.

  // The main G.
  G* mg = &main_g_storage;
  mg->is_main = true;
  ksched_init();  // the initial thread's values: every M starts with them
  ksched_reset(mg);
  mg->tcb = reinterpret_cast<void*>(arch_get_fs());
  mg->ctx.fs = arch_get_fs();
  mg->m = m0;
  mg->goid = sched.goid_gen.fetch_add(1) + 1;
  mg->fake_tid = static_cast<uint32_t>(tcb_field<int>(mg->tcb, tcbo::kTid));
  initgstatus(mg, kGRunning);  // before runtime_up: no other thread knows it
  g_sigmask_init(mg, &g_start_mask);
  cpu_init_g(mg, m0);
  gmem_register_main(mg);
  tls_g = mg;
  m0->curg = mg;
  // Every P but P0 starts idle.
  for (uint32_t i = cfg.procs; i-- > 1;) pidleput_locked(&sched.allp[i]);
  acquirep(m0, &sched.allp[0]);
  sched.ngsys_live.store(1, std::memory_order_relaxed);
  runtime_up = true;
  return true;
}

// M0's g0 (its own 256 KiB stack and TCB) is made when the process first
// needs it, with sysmon (sysmon_ensure_slow): M0 switches to g0 only after
// a park, a second G or sysmon's retake, each of which starts sysmon first.
void m0_g0_ensure() {
  M* m0 = &m0_storage;
  if (m0->g0.tcb) return;
  G* sys = gmem_alloc(256 * 1024, 4096, nullptr, static_cast<uint32_t>(m0->tid));
  if (!sys) fatal("cannot allocate M0's scheduler stack");
  m0->g0.stack_lo = sys->stack_lo;
  m0->g0.stack_size = sys->stack_size;
  gmem_set_tls_g_at(sys->tcb, &m0->g0);
  ctx_make(&m0->g0.ctx, sys->stack_lo, gmem_stack_top(sys), reinterpret_cast<uintptr_t>(sys->tcb), m0_g0_entry, m0);
  m0->g0.tcb = sys->tcb;
}

// Best effort for fatal(): counts only, read without locks.
void dump_sched_state_for_fatal() {
  if (!runtime_up) return;
  char buf[256];
  char* e = buf + sizeof buf - 1;
  char* p = fmt_str(buf, e, "SCHED procs=");
  p = fmt_u64(p, e, sched.nprocs);
  p = fmt_str(p, e, " idleprocs=");
  p = fmt_u64(p, e, static_cast<uint64_t>(sched.npidle.load()));
  p = fmt_str(p, e, " threads=");
  p = fmt_u64(p, e, static_cast<uint64_t>(sched.mcount.load()));
  p = fmt_str(p, e, " spinningthreads=");
  p = fmt_u64(p, e, static_cast<uint64_t>(sched.nmspinning.load()));
  p = fmt_str(p, e, " runqueue=");
  p = fmt_u64(p, e, static_cast<uint64_t>(sched.runq_size.load()));
  *p = 0;
  raw_print(buf);
}

}  // namespace mnp

#ifdef MNP_EXPORT_TEST
// Test-only exports (core/export_test.h); absent from libmnpthread.so.
#include "core/export_test.h"
namespace mnp::test {
G* steal_from(M* thief, P* victim, bool take_next) { return mnp::steal_from(thief, victim, take_next); }
int64_t steal_next_delay_ns() { return kStealNextDelayNs; }
void resetspinning(M* mp) { mnp::resetspinning(mp); }
}  // namespace mnp::test
#endif
