// core/sched.h — G, M, P and the global scheduler state.
//
// The model is Go's (docs/ARCHITECTURE.md, "Model"): a G is a user thread, an
// M a kernel thread, a P the right to run G code. An M runs G code only while
// it holds a P. Each P has a local run queue (runq.h); the global queue, the
// idle P and M lists and the free-G list live in Sched under Sched::lock.
//
// Who owns what is written next to each field. "owner" of a P is the M that
// holds it; a G's fields marked (self) are written only by the G itself or by
// whoever holds it in a non-running state.
#pragma once

#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cstdint>

#include "arch/x86_64/context.h"
#include "core/futex.h"
#include "core/runq.h"
#include "core/timer.h"
#include "core/waitreason.h"

namespace mnp {

struct M;
struct MThread;
struct P;
struct CancelWait;

// G status. Every change of a G that another thread may see goes through
// casgstatus(), which fails loudly (from, to and the state it found, by
// name) when the G is not in the state the caller expects; a G no other
// thread can see yet gets its first state from initgstatus(). The states,
// and who moves a G out of each (sched.cpp, syscall.cpp, poke.cpp):
//   Idle     on a free list; nobody runs it; stack+TCB reusable.
//            -> Runnable: newproc, the creator (gfget gave it the G)
//   Runnable on a run queue (or about to be); stack not in use.
//            -> Running: the M that popped it (execute, switch_g)
//   Running  on an M; the stack belongs to that M. Moved by that M only:
//            -> Waiting: park, in its on-top callback (park_commit_cb)
//            -> Runnable: yield and preemption, in theirs
//            -> Syscall: entersyscall, or the poke handler on its M for a
//               call no wrapper covers (mark_in_syscall)
//            -> Dead: g_exit_current
//   Waiting  parked; it is on some wait list and only a ready() moves it on
//            (or park_commit_cb itself when the commit fails).
//            -> Runnable: ready, the one thread that took it off the list
//   Syscall  in a wrapped call (or one sysmon's poke found it in) with its
//            P marked kPSyscall or gone; the stack belongs to its M.
//            Moved by its own M only:
//            -> Running: exitsyscall_fast got a P; park and the fork child
//               after losing the P in uncovered code
//            -> Runnable: exitsyscall_park (no P free: queued globally)
//   Dead     finished; waits to be joined or recycled.
//            -> Idle: gfput, the reaper (g_reap)
// ready() spins while a G is Running or Syscall (it is on its way into
// park); every other state it finds is fatal.
enum GStatus : uint32_t { kGIdle, kGRunnable, kGRunning, kGWaiting, kGSyscall, kGDead };

// G::preempt: sysmon found the G's time slice over. Any non-zero value ends
// the slice at the G's next park or yield, or at the return of its next
// interposed call (preempt_check); cleared whenever the G is switched in,
// since a mark from before it stopped is stale. kPreemptAsync also asks the
// signal handler, once, to try to stop the G where it is (it moves the
// value down to kPreemptMarked before it walks the stack, so the costly
// walk happens at most once per request, however many signals arrive).
//
// kPreemptWake and kPreemptWakeAsync are the same requests for a G readied
// on this P while this one had run kWakePreemptNs (sched.cpp ready,
// sysmon.cpp for a due timer): the P's next G (the woken one) runs first,
// in the slice under way, instead of the ring's head in a new one.
enum : uint32_t { kPreemptNone, kPreemptMarked, kPreemptAsync, kPreemptWake, kPreemptWakeAsync };
// How long a G runs before a G readied on its P takes the P from it
// (kPreemptWake): the kernel's wake-up preemption, roughly.
constexpr int64_t kWakePreemptNs = 100 * 1000;

// Join word states (G::join); any other value is the joining G's address.
constexpr uintptr_t kJoinable = 0;
constexpr uintptr_t kDetached = 1;
constexpr uintptr_t kExited = 2;        // joinable and finished: a zombie
constexpr uintptr_t kKernelJoiner = 3;  // a non-G thread waits on G::exited
constexpr uintptr_t kJoined = 4;        // joined and reaped; no longer a thread
constexpr uintptr_t kDetachedDone = 5;  // detached and finished: reaped; no longer a thread
// What glibc 2.36 answers for a handle whose thread is gone while its
// memory is still cached (tests/programs/errors.c): joined -> join and
// detach ESRCH, tryjoin EBUSY; detached and finished -> EINVAL for all.

enum : uint8_t { kGCacheNone, kGCacheDefault, kGCacheSized };

struct G {
  Context ctx;  // written by mnp_ctx_switch only
  std::atomic<uint32_t> status{kGIdle};
  uint32_t wait_reason = kWaitNone;  // (self)
  M* m = nullptr;                    // M running this G; valid while Running
  G* schedlink = nullptr;            // global run queue / free lists (lock holder)
  void* tcb = nullptr;               // glibc TCB == the pthread_t value
  uint64_t goid = 0;
  // Memory: one mapping [map_base, map_base+map_size) holding guard, stack,
  // static TLS, TCB and this G, unless the stack is the program's own.
  void* map_base = nullptr;
  size_t map_size = 0;
  void* slab = nullptr;  // the stack slab holding that mapping (gmem.cpp), or null: its own
  void* stack_lo = nullptr;
  size_t stack_size = 0;
  size_t guard_size = 0;
  bool user_stack = false;  // stack supplied by pthread_attr_setstack
  bool is_main = false;
  bool is_g0 = false;
  // Where the G goes when reaped (sched.cpp, g_reap): a P's or the global
  // free list (default-sized stack), the sized list (another size), or
  // nowhere (the program's own stack: freed).
  uint8_t cache_kind = 0;
  void* (*start_fn)(void*) = nullptr;
  void* start_arg = nullptr;
  void* result = nullptr;
  std::atomic<uintptr_t> join{kJoinable};
  std::atomic<uint32_t> exited{0};  // futex word for kernel joiners
  uint32_t fake_tid = 0;
  // set_tid_address of this G (interpose/tid.cpp): zeroed and woken when it
  // exits, as the kernel does for a thread's clear_child_tid; null: none.
  std::atomic<uint32_t>* clear_tid = nullptr;
  int64_t park_time = 0;       // (self) TSC when it last parked (G dump)
  uint32_t syscall_depth = 0;  // (self) nested wrapped calls, e.g. from a signal handler
  // (self) in g_exit_current past the point where it left the live count:
  // no thread of the program's any more (no signal is its, no blocked-M
  // look may take its P from the runtime code that ends it).
  bool exiting = false;
  // (self) non-zero while this G reads G::m to take a hold on it (hold_m,
  // sched_internal.h): a handler of the program's waits, or it could move the G
  // to another M between the read and the hold.
  volatile uint32_t mhold = 0;
  std::atomic<uint32_t> preempt{0};  // sysmon: time slice over (kPreempt*, sysmon.cpp)
  bool glob_woken = false;           // in the global queue's woken part (Sched::lock)
  // Readied by a timer (a sleep or a timed wait that ended), not yet run:
  // at a slice's end it goes before the queued Gs (next_local). Set by
  // the timer's firer, cleared when the G is switched in.
  std::atomic<bool> woke_by_timer{false};
  // (self; read by its waker) TSC when it began to wait for a lock word
  // (word_lock_slow, core/sema.h), 0 when it waits for none.
  uint64_t lock_wait_since = 0;
  // (self) A libc function's return address replaced with the return
  // hook's (core/preempt.h, ret_hook_install): the original and its slot.
  uintptr_t ret_hook_ra = 0;
  uintptr_t* ret_hook_slot = nullptr;
  // Its last preemption walk took long (a deep stack): sysmon gives it
  // longer slices (kDeepSliceNs, sysmon.cpp). Written by the poke handler.
  std::atomic<bool> deep_walk{false};
  std::atomic<uint32_t> runtime_eintr{0};  // our signal interrupted a wrapped call
  void* robust_list = nullptr;             // (self) robust mutexes held (interpose/mutex.cpp)
  uint32_t yield_idle = 0;  // (self) sched_yield calls in a row that found no G to run (interpose/thread.cpp)
  // Kernel scheduling attributes as the program set them (core/ksched.h).
  // Written by any thread under the handle table's lock or by the G; the
  // G alone applies them to its M (ks_wired: it holds a wiring for them).
  int sched_policy = 0;
  int sched_priority = 0;
  int sched_nice = 0;
  bool affinity_set = false;  // else the process's mask
  bool ks_wired = false;      // (self)
  std::atomic<uint8_t> ks_dirty{0};
  // 1 while its M carries a real-time policy the G applied (set by the G,
  // read by sysmon and sched_yield): the kernel, not the runtime, decides
  // when it stops running.
  std::atomic<uint8_t> ks_rt{0};
  // The start hand-shake of a real-time G that outranks its creator
  // (ksched.h, ksched_start_wait): the creator's word (kStart*), and the
  // child's pointer to the waiting creator.
  std::atomic<uint8_t> ks_start{0};
  G* ks_creator = nullptr;
  // Its real-time priority when its record is a real-time policy above the
  // process's default, else 0 (ksched_rerank, on every change of the
  // record): a runnable G with one waits in the global queue's real-time
  // part, which every P takes from first.
  uint8_t rt_rank = 0;
  cpu_set_t affinity{};
  char name[16] = {};
  // The netpoller's record of an interruptible sleep this G is in, or null,
  // and a flag a signal's interrupter holds while it uses that record (the
  // G waits for it to drop before its frame goes: netpoll_sleep).
  std::atomic<void*> sleep_wait{nullptr};
  std::atomic<uint32_t> sleep_intr_busy{0};
  // A signal whose EINTR sysmon already decided when it woke this G to run
  // the signal's handler (core/sigpend.h), or 0; cleared by the G.
  std::atomic<int32_t> sig_eintr{0};
  // (self) Handlers of the program's run on this G since its current
  // runtime wait began (kSigRan, kSigRanNoRestart: one without SA_RESTART);
  // a semaphore or futex wait decides its EINTR from them (core/sema.cpp).
  uint8_t sig_ran = 0;
  // (self) Program handlers run on this G, ever: one that runs between a
  // masked call's start (CallMask::ran) and its park commit or real system
  // call ends the call with EINTR (netpoll_wait_any's `call`,
  // g_call_mask_hold).
  uint32_t handlers_run = 0;
  // (self) Program handlers running on this G now (perhaps on a
  // sigaltstack), counted from the trampoline's, run_one's or
  // chain_to_user's start to its end: while non-zero, the stack below its saved stack pointer may be
  // live (gmem_shrink_parked leaves it alone) and so may a malloc (its
  // malloc words stay as they are, core/mcache.h).
  uint32_t in_handler = 0;
  // (self) Between g_call_mask_begin and g_call_mask_end: a call's signal
  // mask is the G's (preempt_check waits for the end).
  bool in_call_mask = false;
  // (self) Its glibc malloc cache word holds a cache of its own, not its
  // P's (core/mcache.h). True for a new G (whatever its word holds is
  // its); for one on the memory of an exited G, mcache_reuse decides.
  bool mcache_own = true;
  // Idle shrink (core/gmem.cpp): sysmon's claim on this parked G's stack
  // (kShrinkBusy while it gives back the pages below the saved stack
  // pointer; whoever resumes the G waits for it to end, gmem_resume), and
  // the park_time it saw on its previous look.
  std::atomic<uint32_t> shrink{0};
  int64_t shrink_seen = 0;  // sysmon
  // Compaction (core/compact.h): the batch whose end releases a resumer
  // that finds shrink still kShrinkBusy (0: none; sysmon writes it before
  // the batch, and never touches the G after).
  std::atomic<uint64_t> shrink_batch{0};
  // The cancellable wait this G may sleep in, for pthread_cancel, and the
  // flag its canceller holds while it uses it (core/cancel.h).
  std::atomic<CancelWait*> cancel_wait{nullptr};
  std::atomic<uint32_t> cancel_busy{0};
  // (self) wrapped calls (of syscall_depth) with a cleanup buffer that undoes
  // the hand-off if glibc's cancellation unwinds through them.
  uint32_t cancel_handoff = 0;
  // Signals (core/sigmask.cpp). sigmask is the program's view of this G's
  // mask (the runtime's signal may be in it); kmask is the same as bits
  // (bit sig-1) without SIGKILL, SIGSTOP, 32 and 33, and its M's kernel
  // thread gets kmask minus the runtime's signal while it runs
  // (g_load_kmask). Both (self), or the creator's before the G first runs.
  sigset_t sigmask = {};
  uint64_t kmask = 0;
  // Set while it waits in sigwait/sigwaitinfo/sigtimedwait (the set) or
  // sigsuspend (what it lets through) on its M: a signal among these bits
  // goes to that M with tgkill and the kernel call takes it (sigpend.h).
  std::atomic<uint64_t> sigwait_bits{0};
  // Set while it makes a call of the direct path (direct_call): a signal
  // another thread sends it goes to its M with tgkill, and the kernel
  // interrupts the call as natively (sigpend.h).
  std::atomic<uint32_t> in_direct{0};
  // Set while it makes the real call of the few-threads path: kWaitCallPoll
  // (poll_like in interpose/poll.cpp; a poll, select or epoll wait): a
  // handler sysmon's kick runs at that call's `syscall` instruction ends
  // the call with EINTR (core/poke.cpp); kWaitCallRw (drive in
  // interpose/net.cpp; a read, write or accept, made only while every
  // handler of the program's has SA_RESTART): the kernel restarts it after
  // the kick, as it would after the handler natively.
  std::atomic<uint32_t> in_wait_call{0};
  // CPU clock (core/cpuclock.h): CPU time used up to the last switch out,
  // the M's clock (estimate) when it was last switched in, and that M while
  // it is switched in. Written by the M that switches it, one at a time,
  // under cpu_seq (odd while it writes); read by anyone.
  std::atomic<uint32_t> cpu_seq{0};
  std::atomic<int64_t> cpu_ns{0};
  std::atomic<int64_t> cpu_start{0};
  std::atomic<M*> cpu_m{nullptr};
  // While it reads a signalfd (interpose/signalfd.cpp): that fd and the
  // signalfd's mask (bit sig-1). A sender that leaves a signal among them
  // pending for this G bumps the fd's netpoll words (sig_send_to_g).
  std::atomic<int> sigfd_fd{-1};
  std::atomic<uint64_t> sigfd_mask{0};
  // Wiring (docs/ARCHITECTURE.md, "Wiring"): while lockcount > 0 this G
  // runs only on lockedm, and that M runs nothing else. All (self): set and
  // cleared by the G while it runs on that M.
  M* lockedm = nullptr;
  uint32_t lockcount = 0;       // reasons held: wire_for_life (one), fork children
  bool wired_for_life = false;  // kernel state that never goes back (ptrace, prctl, ...)
  // Its alternate signal stack (core/altstack.h), [lo, hi), once enabled
  // with success; own_altstack: given to the kernel, so every M that runs
  // this G has it (with altstack_flags: SS_AUTODISARM or 0). A handler may
  // be parked on it while the G waits, so idle shrink (core/gmem.cpp)
  // keeps its pages even below the saved stack pointer. (self)
  bool own_altstack = false;
  int altstack_flags = 0;
  uintptr_t altstack_lo = 0, altstack_hi = 0;
  // That alternate stack is another live G's too, and was not given to the
  // kernel for this one (interpose/wire.cpp, altstack_call).
  bool altstack_virtual = false;
  uint32_t wired_children = 0;  // children forked and not yet reaped by this G
};

constexpr uint8_t kSigRan = 1, kSigRanNoRestart = 2;
// G::in_wait_call.
constexpr uint32_t kWaitCallPoll = 1, kWaitCallRw = 2;

// P status. Only kPSyscall is contended: its M is in a blocking call
// (entersyscall) and sysmon (retake) or the M itself (entersyscall_block)
// may hand it off with a CAS to kPIdle, while the M takes it back on exit
// with a CAS to kPRunning (exitsyscall_fast). That CAS decides who owns the
// P. Every other change is a plain store by the one thread that owns the P
// at that moment, safe because nobody else writes the status then:
//   Idle -> Running     acquirep, exitsyscall_fast (a P off the idle list):
//                       the M that took it off the idle list under
//                       Sched::lock, or got it from startm (M::nextp)
//                       after a retake's CAS
//   any -> Running      after_fork_child: the child's only thread
//   Running -> Syscall  mark_in_syscall: the owner, release (publishes
//                       syscalltick and the P's unowned state to sysmon)
//   Running/Idle -> Idle  pidleput_locked, under Sched::lock: the owner
//                       that released it, or whoever won it (retake's CAS)
// Readers that are not the owner (sysmon's retake and detect_blocked, the
// trace) load it with acquire and act only through that CAS.
enum PStatus : uint32_t { kPIdle, kPRunning, kPSyscall };

struct P {
  uint32_t id = 0;
  std::atomic<uint32_t> status{kPIdle};  // see PStatus
  M* m = nullptr;                        // owner; read racily by sysmon (detect_blocked)
  P* link = nullptr;                     // idle list (Sched::lock)
  bool on_idle_list = false;             // (Sched::lock)
  // Owner: time slices on this P (execute, switch_g). sysmon reads it
  // racily (relaxed __atomic_load_n, detect_blocked): a stale value only
  // delays its verdict by a round.
  uint32_t schedtick = 0;
  G* gfree = nullptr;  // owner: free Gs with default-sized stacks
  int32_t ngfree = 0;
  TimerHeap timers;                       // its own lock; when0 read by anyone (handoffp)
  std::atomic<uint32_t> syscalltick{0};   // owner: bumped on every entersyscall; sysmon reads (retake)
  std::atomic<uint32_t> parks{0};         // owner: bumped on every park; sysmon reads (Gs to shrink, gmem.cpp)
  uint32_t sysmon_tick = 0;               // sysmon: syscalltick seen last round
  std::atomic<bool> syscall_long{false};  // sysmon sets: its call outlived a round; exitsyscall clears
  int64_t sysmon_when = 0;                // sysmon: when it saw it
  int64_t calls_since = 0;                // sysmon: since when every round found it in a call with work waiting, or 0
  uint32_t sysmon_sched = 0;              // sysmon: schedtick seen last round
  M* sysmon_m = nullptr;                  // sysmon: owner seen last round
  int64_t run_since = 0;                  // sysmon: when this schedtick was first seen
  bool sysmon_wakeable = true;            // sysmon: its G may take a wake mark (wake_preempt_delay)
  int64_t poke_after = 0;                 // sysmon: no blocked-M signal before this
  int64_t poke_gap = 0;                   // sysmon: back-off between them, this tick
  int64_t still_since = 0;                // sysmon: since when its M's CPU clock stands still, or 0
  int64_t over_cpu = -1;                  // sysmon: its M's CPU clock when its G went past its slice, or -1
  // glibc malloc's cache and arena for the Gs it runs (core/mcache.h).
  // Owner; mcache also whoever takes it from an M in a call (mcache_taken),
  // told by mcache_in_call (set by mark_in_syscall) that the G in the call
  // uses the cache.
  void* mcache = nullptr;
  void* marena = nullptr;
  bool mcache_in_call = false;
  // Last: its 2 KiB ring is not written when a P is made, so the start-up
  // writes of every P's other fields share as few pages as they can.
  RunQ runq;  // owner pushes; anyone steals; sysmon reads empty()
};

// Cache-line aligned: M0 sits among the start-up data (MNP_START_DATA, read
// on every interposed call), and its own thread writes `locks` and `curg`
// all the time.
struct alignas(64) M {
  G g0;                // scheduler context; g0.tcb is this M's TCB
  G* curg = nullptr;   // G running on this M (owner); sysmon and signal senders read it racily, inside
                       // gmem_peek_begin/end (gmem.cpp)
  P* p = nullptr;      // P held (owner)
  P* nextp = nullptr;  // P handed to this M by startm (set before wake)
  P* oldp = nullptr;   // P it held when it entered a syscall
  // oldp's P::syscalltick as this M's mark left it: a different value when
  // it gets oldp back means the P was taken and marked again by another
  // M's G meanwhile, whose call it takes the P from (exitsyscall_fast).
  uint32_t syscalltick = 0;
  // The G wired to this M (owner: that G, while it runs here), or null. A
  // wired M runs only that G; while it waits, the M sleeps on `park`
  // without a P until an M that picked the G hands it one (startlockedm).
  G* lockedg = nullptr;
  // A G popped by a direct G-to-G switch that is wired to another M: g0
  // hands this M's P to that M (m_loop). Owner.
  G* nextg = nullptr;
  bool dying = false;  // its wired G exited: the kernel thread ends (m_loop)
  // The alternate signal stack its thread has, [alt_lo, alt_hi), or 0 and 0
  // for none (core/altstack.h). Own thread only.
  uintptr_t alt_lo = 0, alt_hi = 0;
  M* newmlink = nullptr;   // waiting for sysmon to start its thread (newm)
  M* schedlink = nullptr;  // idle list (Sched::lock)
  M* alllink = nullptr;    // all Ms, append-only
  Note park;               // sleeps here when idle
  bool spinning = false;   // looking for work; counted in Sched::nmspinning
  int tid = 0;             // kernel tid
  uint32_t id = 0;
  void* glibc_tcb = nullptr;  // the kernel thread's own TCB (FS for glibc's set*id code)
  // Its thread's memory when mthread_create made it (core/mthread.h); null
  // for M0 and for threads glibc made.
  MThread* kthread = nullptr;
  bool xid_live = false;                 // a set*id broadcast must reach it (mthread.cpp's lock)
  std::atomic<bool> xid_pending{false};  // such a broadcast's signal is on its way to it
  uint64_t rand = 0;
  int64_t sysmon_cpu = -1;         // sysmon: thread CPU time seen last round (-1: not read)
  std::atomic<uint32_t> pokes{0};  // sysmon's signal sent to this M, not yet handled (0 or 1)
  int64_t poke_sent = 0;           // (sysmon) when it was sent (poke_m, sysmon.cpp)
  // Its own poke handler is walking the stack (own thread only, hence
  // volatile): a poke arriving meanwhile does nothing (poke.cpp).
  volatile bool poke_walking = false;
  // Its kernel CPU clock (core/cpuclock.cpp), own thread only: the last real
  // reading, the monotonic time and TSC of it (0: none), whether estimates
  // may start from it; the first (monotonic, TSC) pair, for the TSC's rate.
  int64_t cpu_base = 0;
  int64_t cpu_wall = 0;
  uint64_t cpu_tsc = 0;
  bool cpu_valid = false;
  int64_t cpu_cal_ns = 0;
  uint64_t cpu_cal_tsc = 0;
  // The TSC at its last switch to a user G (cpu_switch; 0: none, or the
  // TSC is not used): written by the M, read by sysmon, to whom the wall
  // time since then bounds the G's CPU time without a clock read.
  std::atomic<uint64_t> g_in_tsc{0};
  // FS base writes made by this thread's context switches (each one an
  // arch_prctl system call without FSGSBASE): written by the M's own thread
  // only, read by the scheduler trace.
  std::atomic<uint64_t> fs_writes{0};

  sigset_t sigmask = {};  // the mask it starts with (set by newm, before the thread exists)
  // The kernel mask of its thread now (bit sig-1), or kKmaskUnknown: written
  // by the thread itself only. A G switch costs an rt_sigprocmask only when
  // the incoming G's kmask differs (g_load_kmask).
  uint64_t kmask = ~0ULL;
  // Program signals and runtime Locks (futex.h): written only on this M's
  // own thread, by its code or its signal handlers (hence volatile).
  volatile uint32_t locks = 0;          // Locks held
  volatile uint64_t sig_deferred = 0;   // bit per signal held back while locks > 0
  volatile uint64_t sig_redeliver = 0;  // raised again by this M; the handler gets sig_info
  // What the kernel gave for a held-back signal, by signal number: 65
  // entries (8 KiB) kept beside the M, out of line so that M0's start-up
  // writes share pages with the other start-up data (allocm; M0's:
  // sched.cpp).
  siginfo_t* sig_info = nullptr;
};
constexpr size_t kMSigInfos = 65;
// Called from the trampoline of the program's handlers (interpose/signal.cpp)
// on the thread the kernel chose. Returns true when the handler must not run
// now: the thread is an M holding a runtime Lock; the signal is raised
// again on this thread when it drops its last one. Otherwise, when this
// delivery is such a re-raise, *si is replaced by what the kernel first gave.
bool m_signal_defer(int sig, siginfo_t** si, siginfo_t* buf);
// interpose/signal.cpp: keeps a held-back signal that its M blocks by the
// time it is raised again for a G (core/sigpend.h).
void set_sig_keep_hook(void (*hook)(int sig, const siginfo_t* si));

// Per-G signal masks (core/sigmask.cpp).
constexpr uint64_t kKmaskUnknown = ~0ULL;
inline uint64_t sigset_bits(const sigset_t* s) { return s->__val[0]; }
// Sets the kernel mask of the calling thread, which is mp's, to k.
void m_set_kmask(M* mp, uint64_t k);
// Bits no M ever blocks in the kernel: the runtime's signal once its
// handler is installed. Applied when a mask is loaded rather than kept in
// each G's kmask, because the runtime's signal can change while Gs live
// (poke_signal_release).
extern std::atomic<uint64_t> g_kmask_open;
// The resumed G's mask on the M it now runs on: a system call only when
// it differs from the one the M has.
inline void g_load_kmask(G* gp) {
  M* mp = gp->m;
  uint64_t k = gp->kmask & ~g_kmask_open.load(std::memory_order_relaxed);
  if (__builtin_expect(k != mp->kmask, 0)) m_set_kmask(mp, k);
}
// A G's mask: first set (newproc, the main G), changed, dropped at exit.
void g_sigmask_init(G* gp, const sigset_t* view);
void g_sigmask_set(G* gp, const sigset_t* view);
void g_sigmask_drop(G* gp);
// A program handler about to run on gp: its mask becomes what the kernel
// gives a thread for a handler, base plus the action's mask and, without
// SA_NODEFER, the signal, in the G's own view (pthread_sigmask reads it,
// and it moves with the G if the handler parks). Returns the mask it
// replaced; the caller puts that back afterwards (g_handler_mask_end when
// the kernel ran the handler). The kernel mask is the caller's to load.
sigset_t g_handler_mask_begin(G* gp, const sigset_t* base, int sig, const sigset_t* act_mask, int flags);
// After a handler the kernel ran (its context uc, whose saved mask was
// uc_was when it started): the G's mask is `was` again, with what the
// handler changed in the saved mask, as sigreturn would load it.
void g_handler_mask_end(G* gp, const sigset_t& was, uint64_t uc_was, const ucontext_t* uc);
// The context a program's handler gets: its saved mask is the kernel's,
// which never blocks the runtime's signal (g_kmask_open). show puts the G's
// own view of that signal in (SBCL's handlers check that its deferrable
// signals, SIGURG among them, are all blocked or all open there, and died of
// "deferrable signals partially blocked" when the G blocked them all);
// hide takes it out again before sigreturn loads the mask.
void uc_show_g_view(ucontext_t* uc, const sigset_t& view);
void uc_hide_g_view(ucontext_t* uc);
// A call that takes a mask for its duration (ppoll, pselect, epoll_pwait,
// sigsuspend): the kernel makes it the thread's mask for the call, so it is
// the G's. begin sets it and runs what it unblocks (true: a handler ran as
// it took effect, the call ends with EINTR); end puts the old mask back and
// runs what the call's mask held back and the old one lets through.
struct CallMask {
  sigset_t was;
  uint32_t ran;  // G::handlers_run at begin
};
bool g_call_mask_begin(G* gp, const sigset_t* view, CallMask* cm);
void g_call_mask_end(G* gp, const CallMask& cm);
// Such a call about to make its real system call (sigsuspend; ppoll,
// pselect, epoll_pwait handed off), on the G's M after entersyscall: the M
// blocks every signal it may block, until the call sets its mask in the
// kernel, so that one sent from now on is delivered inside the call (which
// then fails with EINTR) and never just before it. False: a handler ran
// on the G since begin, and the call must end with EINTR without being
// made (it would sleep through the signal that ended it).
bool g_call_mask_hold(G* gp, const CallMask& cm);
inline bool g_blocks(const G* gp, int sig) { return (gp->sigmask.__val[0] >> (sig - 1)) & 1; }
// What an M between Gs blocks: the signals every live G blocks (so that
// the kernel picks it for no signal that natively would stay pending).
uint64_t idle_kmask();
// Every live G blocks sig.
bool sig_blocked_by_all_gs(int sig);
// An M about to sleep between Gs takes idle_kmask, and looks at the counts
// again after (note_all_block, sigmask.cpp).
void m_set_idle_kmask(M* mp);
// Called with signals every live G has just come to block (a G blocked
// them, or the last G that let them in exited) that some M between Gs may
// still let in (it went to sleep before), before the call that made it so
// returns: a kill of the process right after must find them blocked
// (interpose/signal.cpp guards their default action).
void set_all_block_hook(void (*hook)(uint64_t bits));
// Signals (bit sig-1) whose kernel action is that guard, the program's own
// being SIG_DFL: free for the runtime's signal to move to (core/poke.cpp).
extern std::atomic<uint64_t> g_dfl_guarded;
// In a child of fork: self is the only G.
void sigmask_after_fork(G* self);

// How long a spinning M looks for work at most and at least (Sched::spin_ns).
constexpr int64_t kSpinNs = 50 * 1000;
constexpr int64_t kSpinMinNs = 5 * 1000;

// Cache-line aligned: it sits among the start-up data (MNP_START_DATA; e.g.
// runtime_up, read on every interposed call) and every M writes its lock
// and counters.
struct alignas(64) Sched {
  Lock lock;
  // Global run queue (lock).
  G* runq_head = nullptr;
  G* runq_tail = nullptr;
  std::atomic<int32_t> runq_size{0};  // both parts: this list and rtq
  // Its real-time part (lock): the Gs with a G::rt_rank, highest rank
  // first, in arrival order within a rank; popped before runq_head. rtq_size
  // is also read without the lock (the pickers' test for it).
  G* rtq_head = nullptr;
  std::atomic<int32_t> rtq_size{0};
  // Its woken part (lock): the Gs a thread without a P readied (sysmon's
  // harvest of the netpoller, a thread that is no G), at the head of the
  // ordinary list in arrival order, up to and including wokeq_last; every
  // P takes from it first (a woken G runs ahead of queued ones, as the
  // kernel's wake-up preemption runs a thread whose wait ended). wokeq_size
  // is also read without the lock.
  G* wokeq_last = nullptr;
  std::atomic<int32_t> wokeq_size{0};
  // Idle Ps (lock); npidle also read without it.
  P* pidle = nullptr;
  std::atomic<int32_t> npidle{0};
  // Idle Ms (lock).
  M* midle = nullptr;
  int32_t nmidle = 0;
  std::atomic<int32_t> mcount{0};
  std::atomic<int32_t> nmspinning{0};
  // How long a spinning M looks for work before it sleeps (find_runnable;
  // adapts to whether spinning pays, see the top of sched.cpp). Any M.
  std::atomic<int64_t> spin_ns{kSpinNs};
  // Set by a readier whose wake-up a spinning M spared (wakep), cleared
  // when a spin begins: such a spin paid even if it found nothing. With
  // several spinners it may be another's. Any M.
  std::atomic<bool> spin_spared_wake{false};
  // The idle M sleeping until the earliest timer, and until when (lock).
  M* timer_m = nullptr;
  std::atomic<int64_t> timer_m_until{INT64_MAX};
  // Free Gs (gfree_lock). gfree_low: the fewest on the list since the
  // scavenger last looked (gfree_scavenge).
  Lock gfree_lock;
  G* gfree = nullptr;
  int32_t ngfree = 0;
  int32_t gfree_low = 0;
  // Free Gs whose stack size or guard is not the default, any mix of
  // sizes, most recently freed first (gfree_lock; gfree_sized_low as
  // gfree_low).
  G* gfree_sized = nullptr;
  int32_t ngfree_sized = 0;
  int32_t gfree_sized_low = 0;
  // All Ps, fixed at start.
  P* allp = nullptr;
  uint32_t nprocs = 0;
  std::atomic<M*> allm{nullptr};
  // Live user Gs (created and not finished, main included).
  std::atomic<int64_t> ngsys_live{0};
  // Of those, parked in a pthread_join (join_park, interpose/thread.cpp):
  // wait_few does not count them.
  std::atomic<int64_t> njoining{0};
  std::atomic<uint64_t> goid_gen{0};
  std::atomic<uint32_t> tid_gen{0};
};

extern Sched sched;
extern bool runtime_up;

// The G whose TLS is loaded: a user G, an M's g0, or null on a thread that
// mnpthread did not create. Every G's static TLS holds its own pointer here.
extern __thread G* tls_g;
// True while this thread is a vfork child running in its parent's memory
// (interpose/vfork.cpp): tls_g is null then, and interposers that act for
// any thread, G or not, leave the runtime's (the parent's) state alone.
extern __thread bool tls_vfork_child;
// True while the runtime's signal handler walks this thread's stack for a
// safe point (core/preempt.cpp): the handler runs with every signal
// blocked, so libunwind's sigprocmask calls (two per frame, each a system
// call) change nothing and are answered without one (interpose/signal.cpp).
extern __thread bool tls_unwinding;

inline G* getg() { return tls_g; }
// The running user G, or null when the caller is g0 or not a G at all.
inline G* get_user_g() {
  G* g = tls_g;
  return (g && !g->is_g0) ? g : nullptr;
}
// get_user_g once the runtime is up; null before.
inline G* running_user_g() { return runtime_up ? get_user_g() : nullptr; }

// The one way a visible G changes status (see GStatus): from `from` to
// `to`; any other state found there is internal corruption, reported by
// name before fatal() (async-signal-safe: the poke handler calls it).
// A CAS, so that two threads that both think they own the change (a
// double ready) cannot both win. Between Running and Syscall, on every
// wrapped call, it is a checked relaxed load and store instead: only the
// G's own M makes those changes (nobody else writes a Running or Syscall
// G's status), and the poke handler that also makes one on that M acts
// only where the G was interrupted outside mnpthread's code. A locked
// instruction there took a wrapped call that never enters the kernel from
// 41-43 ns to 58-64 ns of CPU time (BM_HandoffNoKernel at 1 P).
[[noreturn]] void gstatus_bad(G* gp, uint32_t from, uint32_t to, uint32_t found);
inline void casgstatus(G* gp, uint32_t from, uint32_t to) {
  uint32_t found = from;
  if ((from == kGRunning && to == kGSyscall) || (from == kGSyscall && to == kGRunning)) {
    found = gp->status.load(std::memory_order_relaxed);
    if (MNP_UNLIKELY(found != from)) gstatus_bad(gp, from, to, found);
    gp->status.store(to, std::memory_order_relaxed);
    return;
  }
  if (MNP_UNLIKELY(!gp->status.compare_exchange_strong(found, to, std::memory_order_acq_rel)))
    gstatus_bad(gp, from, to, found);
}
// The first status of a G that no other thread can reach yet (a new M's
// g0 before it is on allm, M0's g0 and the main G before runtime_up): a
// plain store, since there is nothing to race with or to check against.
inline void initgstatus(G* gp, uint32_t s) { gp->status.store(s, std::memory_order_relaxed); }
// "idle", "runnable", ... for messages and the G dump.
const char* gstatus_name(uint32_t s);

// Scheduling primitives (callable only from a user G unless noted).
using ParkCommit = bool (*)(G* gp, void* arg);
// Parks the current G. `commit` runs after the G's registers are saved and
// its status is Waiting; if it returns false the G is made runnable again.
// The caller may hold the Lock that commit releases. park never queues the
// G before commit has run: a G that lost its P (and finds none free) parks
// straight from its M, which then goes idle without a P. `release`, if
// given, is a Lock the caller holds that park releases before the switch,
// once it holds the M itself: no handler of the program's (held back while
// the M is held, futex.h) runs between the caller's wait record and the
// park (core/sema.cpp).
void park(WaitReason reason, ParkCommit commit = nullptr, void* arg = nullptr, Lock* release = nullptr);
// Makes a parked G runnable (callable from anywhere, G or not).
void ready(G* gp, bool next = true);
// Readies the Gs a wake-up takes off a wait list, a batch at a time, so
// that ready (which may wake an M) never runs under the list's lock:
// collect(woken, total, &more) takes the lock, moves at most kReadyBatch
// Gs into woken, sets more if it stopped at that limit, drops the lock and
// returns how many it took (total: how many earlier batches took).
// Returns how many Gs were readied.
constexpr int kReadyBatch = 64;
template <typename Collect>
int ready_batched(Collect collect) {
  G* woken[kReadyBatch];
  int total = 0;
  for (;;) {
    bool more = false;
    int k = collect(woken, total, &more);
    for (int i = 0; i < k; i++) ready(woken[i], true);
    total += k;
    if (!more) return total;
  }
}
// Gives up the P to another runnable G: of this P, the global queue, or
// stolen from another P's ring; returns false at once if none. at_mark:
// called for the G's preemption mark (preempt_check); a wake mark then
// sends it to the P's next, to run again when the woken G stops.
bool yield(bool at_mark = false);

// Wiring a G to its M (docs/ARCHITECTURE.md, "Wiring"), for state the
// kernel keeps per kernel thread. Called by the running user G only (others:
// no-ops). wire_take/wire_drop count reasons; the G is wired while any is
// held. wire_for_life takes one reason that is never dropped: the G's M
// exits with it (as natively its kernel thread would), so the state dies
// with the thread it belongs to. `creds`: the state is the thread's
// credentials (capabilities, keepcaps, securebits, fsuid): threads the
// runtime makes afterwards may inherit it, and should, since glibc's
// set*id broadcast fails (abort) when one thread lacks a capability the
// caller has. Other state (a name, seccomp, namespaces) must not reach
// sysmon and the Ms it creates: sysmon is started first.
void wire_take();
void wire_drop();
// gp is the process's only G, on its only kernel thread, and no runtime
// thread exists yet (main before any thread, or a fork child): what that
// kernel thread carries now, every thread made later inherits
// (wire_for_life, ksched_apply_self).
bool still_one_thread(const G* gp);
// `inherited`: a thread the caller creates later inherits the state
// natively (all but a parent-death signal, syscall user dispatch and a
// tracer's bond): in a process that is still one thread nothing is wired.
void wire_for_life(bool creds = false, bool inherited = true);
// Before a fork's wire_take: a G other than main on M0 moves to a new M
// (sched.cpp says why). gp is the caller.
void wire_leave_m0(G* gp);
// In a child of fork: the children of the parent are not this process's.
void wire_after_fork_child(G* gp);

// Thread lifecycle (user G or not).
struct GSpec {
  void* (*fn)(void*);
  void* arg;
  size_t stack_size;  // 0 = default
  size_t guard_size;  // (size_t)-1 = default
  void* user_stack;   // non-null: program's own stack of stack_size bytes
  bool detached;
  const sigset_t* sigmask = nullptr;  // null: the creator's (pthread_attr_setsigmask_np)
};
// Creates and queues a new G. Returns 0 or EAGAIN (no memory / mappings).
int newproc(const GSpec& spec, G** out);
// Frees a finished G that was joined (or detached after it exited).
void g_reap(G* gp);
// sysmon, every round: frees the global free Gs that went unused for a
// whole scavenger period (sched.cpp, "bounded caches"). True while free Gs
// beyond the warm few remain, so that sysmon keeps a deadline.
bool gfree_scavenge(int64_t now);
[[noreturn]] void g_exit_current(void* result);
// Run on every exiting G after its TLS destructors (set once at start-up).
using GExitHook = void (*)(G* gp);
void set_g_exit_hook(GExitHook hook);

// Blocking calls (docs/ARCHITECTURE.md, "Blocking calls", hand-off).
// entersyscall marks the P as in a syscall (no lock, a few ns); exitsyscall
// takes the same P back if sysmon did not retake it, else an idle P, else
// queues the G and parks the M. entersyscall_block hands the P off at once
// (calls known to block long). entersyscall_wait puts the P on the idle list
// at once unless some P's queue, the global queue or this P's timers hold
// work (then as entersyscall_block): the few-threads path (wait_few). All
// are no-ops for callers that are not user Gs.
void entersyscall();
void entersyscall_block();
void entersyscall_wait();
void exitsyscall();
// The same for a caller that has checked it is a user G of a running
// runtime (tls_g, not g0, runtime_up): interpose/blocking.h's bracket.
void entersyscall_g(G* gp);
void entersyscall_block_g(G* gp);
void entersyscall_wait_g(G* gp);
void exitsyscall_g(G* gp);
// A handler of the program's is about to run on gp, which may be inside a
// wrapped call (the kernel or sysmon's kick interrupted the call): its P is
// given up, yet the handler may wait like any G code (sem_wait, a contended
// mutex, nanosleep, a full pipe) or readies Gs. handler_begin takes a P back
// as if the call had returned (the G may move to another M: its call then
// goes on there, which the kernel allows, since a handler turns a restart
// block into EINTR) and returns the nesting depth; handler_end marks the P
// of the M running the G then in the call again. Both do nothing outside
// wrapped calls.
int handler_begin(G* gp);
void handler_end(G* gp, int depth);
// A P was just taken by an M: wakes sysmon if it sleeps without a deadline
// (it does while every P is idle).
void sysmon_p_busy();
// Wakes sysmon for a signal to deliver (netpoll_signal_arrived, sigpend):
// async-signal-safe.
void sysmon_wake_from_signal();
// After a wrapped call's EINTR: true when the runtime's signal caused it
// and no handler of the program's ran since handlers_before (G::handlers_run
// before the call), so the call is made again; clears the flag.
bool syscall_eintr_was_ours(uint32_t handlers_before);
// G::handlers_run of the calling G (0 for a thread that is no G).
inline uint32_t g_handlers_run() {
  G* g = tls_g;
  return g ? g->handlers_run : 0;
}
// A G whose M lost its P while blocked in code no wrapper covers (sysmon's
// detection, see sysmon.cpp) takes a P back here; every scheduling point
// calls it before touching m->p. When no P is free the G is queued as
// runnable and its M goes idle: so ensure_p is called with no runtime Lock
// held (see Lock in futex.h). Wait paths call it before they take the lock
// of their wait structure.
void exitsyscall_now(G* gp);
// The part of exitsyscall_now that never queues the G: its old P if sysmon
// left it, else an idle P. False (and no P) when every P is busy.
bool exitsyscall_fast(G* gp);
inline void ensure_p(G* gp) {
  if (MNP_UNLIKELY(gp->m->p == nullptr) && gp->syscall_depth == 0) exitsyscall_now(gp);
}
// gp holds a P on which, and globally, no G is queued, and is in no wrapped
// call: what both direct paths below ask of the caller itself.
inline bool nothing_queued_for(G* gp) {
  P* pp = gp->m->p;
  return pp && pp->runq.empty() && sched.runq_size.load(std::memory_order_relaxed) == 0 && gp->syscall_depth == 0;
}
// Whether a G that found a lock word held should spin before it parks
// (word_lock_slow's spins for a pthread mutex): only when other Gs are
// queued on its P, so that parking would cost a switch now and a wake-up
// later, and another P runs Gs, one of which may be about to unlock. With
// nothing queued it parks at once and lets its P go idle, and a lock-bound
// pair ends up on one P (docs/ARCHITECTURE.md, "Runtime waits").
inline bool lock_spin_pays(const G* gp) {
  const P* pp = gp && gp->m ? gp->m->p : nullptr;
  if (!pp || pp->runq.empty()) return false;
  int32_t busy = static_cast<int32_t>(sched.nprocs) - sched.npidle.load(std::memory_order_relaxed) -
                 sched.nmspinning.load(std::memory_order_relaxed);
  return busy > 1;
}
// The direct path (docs/ARCHITECTURE.md, "Blocking calls"): a G about to
// park on the netpoller for a poll-family call is the process's only G and
// nothing is queued: parking would only switch to g0, which would find
// nothing and block in the netpoller for it (two FS writes, an epoll_ctl
// and two epoll_waits). It makes the real call in syscall state instead;
// if work appears meanwhile (a handler creates a G) sysmon retakes the P.
// Only while its M is the process's one M (sysmon blocks every signal):
// then the kernel gives a process-directed signal to the thread in the call
// and interrupts it as natively; an idle M could take it instead, and the
// handler would then reach the G through sysmon's kick, whose SA_RESTART
// restarts the call where the program's handler wanted EINTR. A signal
// sent to the G itself goes to its M for the same reason (direct_call).
inline bool wait_direct(G* gp) {
  return sched.ngsys_live.load(std::memory_order_relaxed) == 1 && sched.mcount.load(std::memory_order_relaxed) == 1 &&
         nothing_queued_for(gp);
}
// Whether a G waits in some P's run queue or in the global queue (racy:
// for decisions a later look corrects).
inline bool queued_anywhere() {
  if (sched.runq_size.load(std::memory_order_relaxed) > 0) return true;
  for (uint32_t i = 0; i < sched.nprocs; i++)
    if (!sched.allp[i].runq.empty()) return true;
  return false;
}
// The few-threads path (docs/ARCHITECTURE.md, "Blocking calls"): a G about
// to park on the netpoller for a poll-family call when the process has no
// more Gs than Ps and nothing waits for this P (no queued G, here or
// globally, no timer on it). Each G could then have a P of its own, so
// parking would only switch to g0, which would block in the netpoller on
// its behalf (an FS write and two epoll_waits more per wait). It makes the
// real call with its P on the idle list (entersyscall_wait): a G readied
// meanwhile gets that P at once through wakep, as it would get an idle
// CPU natively. Reads, writes and accepts (interpose/net.cpp, drive) take
// it only while every handler of the program's has SA_RESTART
// (sig_handlers_restart): a program signal that reaches such a call
// through the runtime's SA_RESTART kick is restarted after the handler,
// which a handler without SA_RESTART would not have wanted; the poll
// family ends with EINTR after any handler.
// A G parked in pthread_join until another ends (the main thread that
// started the workers, typically) is not counted: it needs no P before one
// of them ends, which frees one.
inline bool wait_few(G* gp) {
  return sched.ngsys_live.load(std::memory_order_relaxed) - sched.njoining.load(std::memory_order_relaxed) <=
             static_cast<int64_t>(sched.nprocs) &&
         nothing_queued_for(gp) && gp->m->p->timers.when0.load(std::memory_order_relaxed) == kNever;
}
// Makes the direct path's call f() with gp marked (G::in_direct), so that
// sig_send_to_g sends gp's own signals to its M meanwhile.
template <typename F>
inline auto direct_call(G* gp, F f) {
  gp->in_direct.store(1, std::memory_order_seq_cst);
  auto r = f();
  gp->in_direct.store(0, std::memory_order_release);
  return r;
}
// ensure_p for a G that may be anything: a user G of a running runtime
// with no wrapped call in progress takes its P back; others do nothing.
void ensure_p_if_g();
// On sysmon: starts the threads of the Ms that wired Ms asked for.
void newm_drain();
// At start-up: reads what sysmon will need (MNP_PREEMPT, MNP_DEBUG,
// MNP_SIGNAL); starts it only for a scheduler trace.
void sysmon_init();
// sysmon and the runtime's signal handler start on first need: the second G
// (newproc), the first M after M0 (newm), the first park, the first wiring
// for kernel-thread state a new thread inherits (wire_for_life, ksched). A
// process with one thread that never waits never has them.
extern std::atomic<bool> sysmon_up;
// M0's scheduler stack and TCB, made with sysmon (sched.cpp).
void m0_g0_ensure();
void sysmon_ensure_slow();
inline void sysmon_ensure() {
  if (MNP_UNLIKELY(!sysmon_up.load(std::memory_order_acquire))) sysmon_ensure_slow();
}
// True on the sysmon thread.
bool on_sysmon();
// sysmon's kernel tid (0 before it starts): a thread of this process that
// leads no thread group, for asking the kernel how it treats one.
int sysmon_tid();
// In a child of fork: no sysmon (no other thread survived) until it is
// needed again.
void sysmon_after_fork();

// Start-up and configuration.
// The environment, parsed once by config_init (core/config.cpp's kVars).
struct Config {
  uint32_t procs;     // MNP_PROCS
  size_t stack_size;  // MNP_STACK
  size_t guard_size;
  bool preempt;           // MNP_PREEMPT
  int signal;             // MNP_SIGNAL
  int64_t schedtrace_ms;  // MNP_DEBUG schedtrace=MS; 0: off
  bool scheddetail;       // MNP_DEBUG scheddetail=1
  bool stack_slabs;       // MNP_DEBUG stackslabs=0 turns them off (core/gmem.cpp)
  uint32_t compact_min;   // MNP_DEBUG compact=N: parked Gs before compaction starts; 0: never (core/compact.h)
};
// Written only by config_init (core/config.cpp); read through config().
extern Config g_config;
inline const Config& config() { return g_config; }
void config_init();
// Sets up Ps, M0 and the main G on the calling (initial) thread. The caller
// continues as the main G.
bool sched_init_main();
void wakep();
// Queues a G made by newproc (after its handle was published).
void newproc_start(G* gp);
// Registers the fork handlers that rebuild the runtime in a child process.
void sched_install_fork_handlers();
void set_os_thread_create(int (*fn)(void* (*)(void*), void*));

// The M running on kernel thread tid, or null. Signal handlers find their
// M so, never through TLS: the FS base may belong to a G mid-switch.
inline M* m_by_tid(int tid) {
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink)
    if (mp->tid == tid) return mp;
  return nullptr;
}
// Lookup pthread_t -> G (null if the handle is not one of ours).
G* g_from_handle(uintptr_t handle);
G* main_g();
uint64_t stat_mcount();
// fatal() (core/base.cpp): the scheduler dump, best effort and without locks.
void dump_sched_state_for_fatal();

}  // namespace mnp
