// core/sysmon.cpp — sysmon: the runtime's monitor thread.
//
// Calls no wrapper covers (glibc-internal lock waits, libgomp's inline
// `syscall` futex waits) are found by sysmon too: a P whose schedtick has not
// moved for a round while its M's thread CPU clock has not moved either is
// held by an M asleep in the kernel. sysmon signals that M (MNP_SIGNAL,
// SIGURG by default); the handler checks that the M was really interrupted
// in a system call instruction outside mnpthread's own code and then does
// what entersyscall would have done, so the next round retakes the P as for
// any syscall. The G, once the call returns, runs on without a P until its
// next scheduling point, where ensure_p() takes one back.
//
// sysmon also starts the threads of Ms that a wired M needs (newm_drain): a
// thread it creates carries no G's kernel-thread state.
//
// sysmon is a kernel thread without a P, started with the runtime's signal
// handler on first need (sysmon_ensure: a second G or M, a first park, a
// first wiring for inherited state), so a one-thread process that never
// waits has neither. It sleeps 20 us between rounds,
// doubling up to 10 ms after 50 rounds without a retake, and entersyscall
// wakes it when it sleeps long, so a blocked call is noticed within ~20 us.
//
// Each round it also retakes the Ps of wrapped calls that outlast a round
// (core/syscall.cpp has the hand-off), ends time slices (preemption through
// the runtime's signal, core/poke.cpp), delivers signals waiting for a G
// (core/sigpend.h), harvests the netpoller when nobody has, looks at watched
// futex words and gives memory back.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>

#include <algorithm>

#include "core/base.h"
#include "core/compact.h"
#include "core/cpuclock.h"
#include "core/gmem.h"
#include "core/mcache.h"
#include "core/mthread.h"
#include "core/netpoll.h"
#include "core/poke.h"
#include "core/preempt.h"
#include "core/rtfd.h"
#include "core/sched.h"
#include "core/sched_internal.h"
#include "core/sema.h"
#include "core/sigpend.h"
#include "core/tcb.h"
#include "core/trace.h"

namespace mnp {

// Lazy start (docs/ARCHITECTURE.md, "Start-up"): sysmon and the runtime's
// signal handler exist once the process has a second G, a second M, a
// wait, or a scheduler trace. The handler survives fork (the kernel's
// action does); sysmon_up does not (the thread does not).
constinit Lock g_sysmon_start_lock;
MNP_START_DATA constinit std::atomic<int32_t> g_sysmon_sleeping_long{0};
MNP_START_DATA constinit std::atomic<bool> sysmon_up{false};

namespace {

// A seccomp filter on this thread (core/base.h), asked at most every 100 ms,
// with SIGSYS let through for the question: sysmon blocks every signal, and
// a filter that traps prctl itself would have the kernel end the process;
// let through, the trap reaches the trampoline of the program's SIGSYS
// handler, which answers it. Until one is seen, mincore (parked stacks) and
// asynchronous preemption (libunwind) go on.
bool seccomp_seen(int64_t now) {
  static constinit int64_t next = 0;
  if (runtime_call_refused(kSeccompSeen)) return true;
  if (now < next) return false;
  next = now + 100 * 1000 * 1000;
  uint64_t sys = uint64_t{1} << (SIGSYS - 1);
  raw_syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, reinterpret_cast<long>(&sys), 0, 8);
  bool seen = seccomp_filter_seen();
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&sys), 0, 8);
  return seen;
}

constexpr int64_t kSysmonMinNs = 20 * 1000;
constexpr int64_t kSysmonMaxNs = 10 * 1000 * 1000;
constexpr int64_t kBusyMaxNs = 2 * 1000 * 1000;
// How long ready fds may wait for a harvest while every P is busy (none
// runs out of work to harvest them itself, and all_ps_computing does not
// hold: a G switched in within kPollComputeNs): the woken Gs then take Ps
// from Gs that have run a while (poll_woken). It was 10 ms (Go's sysmon
// harvests so): rsyslog's UDP input lost 543 and 1,371 of 2,000 messages
// to a full receive buffer in 2 runs of 25 on a loaded machine (natively
// none). A thread reading UDP beside 4 computing threads, 2 other
// processes spinning on the 2 CPUs: datagrams 1.13-1.74 ms late on average
// at 2 Ps (worst 13-24 ms) with 10 ms, 1.14-1.18 (10-20) with 1 ms;
// natively 0.03-0.12 (4-8). What is left is the hops each wake-up takes
// through sysmon and the signal, each one waiting for a CPU.
constexpr int64_t kPollStaleNs = 1000 * 1000;
// A P found in a system call at every round for this long while Gs wait
// for it is retaken, new calls or not (retake).
constexpr int64_t kCallsHoldNs = 1000 * 1000;
constexpr int64_t kWatchNs = 5 * 1000 * 1000;  // sema_watch_scan at most this often
// sysmon's long sleep: a futex word any number of wakers may set (unlike a
// Note, which allows exactly one wake-up per sleep).
constinit std::atomic<uint32_t> g_sysmon_wake{0};
void sysmon_sleep(int64_t ns) {
  struct timespec ts = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  if (g_sysmon_wake.load(std::memory_order_acquire) == 0) futex_wait(&g_sysmon_wake, 0, ns == kNever ? nullptr : &ts);
  g_sysmon_wake.store(0, std::memory_order_relaxed);
}

// A time slice: how long a G may keep its P while other work waits for it.
// Near Linux's own (EEVDF's base slice is 0.75 ms times 1 + log2 of the
// CPUs up to 8: 1.5 ms on 2 CPUs), not Go's 10 ms: programs written for
// kernel threads spin-wait for each other, and every hand-off between two
// spinners costs a slice. sysmon looks at a busy P at least every
// kBusyMaxNs, so a slice ends 2-4 ms after it began (1 ms gave what 2 ms
// gives). Measured on the FSGSBASE machine, 2026-12-06, quiet, runs of
// the 10 ms and 2 ms builds alternated: redis with 4 I/O threads (they
// and its main thread spin for each other; redis-benchmark -t set,get
// -c 50 --threads 2) 985-997 -> 2,953-2,955 req/s at 2 Ps (natively
// 2,951-3,066) and 493-496 -> 1,451-1,478 at 1 P (natively on one CPU
// 1,533); 3 ms gave 1,946-1,994 and 973-985. The price is paid by
// compute threads that outnumber the Ps: `zstd -T8 -12` of 72 MiB at 1 P
// 1.56-1.72 -> 1.68-1.84 s (natively on one CPU 1.73), about 5% more;
// `xz -T2 -6` of 24 MiB 4.16-4.36 -> 3.99-4.18 s. A 3 ms trial on the
// no-FSGSBASE VM (2026-12-05) had measured `xz -T2 -3` 20% slower (2.07
// to 2.48 s, medians of 3); not seen on this machine.
constexpr int64_t kPreemptNs = 2 * 1000 * 1000;
// The slice of a G whose last preemption walk took longer than
// kDeepWalkNs (poke.cpp): a walk costs about 60 ns a frame here, so two
// threads spinning 5,000 frames deep at 1 P did 14% less work with 2 ms
// slices than with 10 ms (4,669 against 5,406 M loop rounds in 2 s, quiet
// machine, 2026-12-06; 10 frames deep: 6,025 against 6,209). With
// kDeepSliceNs they did what they did with 10 ms (3,506-4,771 against
// 3,461-4,677 M in three noisy runs later that day; 2 ms: 2,470-3,918).
constexpr int64_t kDeepSliceNs = 10 * 1000 * 1000;
// A real-time G's time slice (ksched.h): the kernel's default real-time
// bandwidth (sched_rt_runtime_us, 950 ms of each second), after which the
// kernel would run the ordinary threads of a CPU its real-time threads keep
// busy.
constexpr int64_t kRtSliceNs = 950 * 1000 * 1000;
constexpr int64_t kPokeGapMaxNs = 1000 * 1000;
// Under a tracer (gdb, strace): how much CPU time a G's M spends past the
// G's slice, the G marked only, before the runtime's signal is sent to
// stop it. Each signal is a stop the tracer must handle, and one that
// arrives while gdb steps a thread over a breakpoint (breakpoint removed,
// one instruction stepped, put back) has the thread meet the breakpoint
// again when the handler returns, whatever the handler does: reported
// twice. With a signal every millisecond past the slice, 4 threads that
// each pass a breakpoint once were reported 5-6 times at 1 P in most runs
// (gdb 13); with this, 4 times in 24 of 24. A program that never calls the
// runtime still moves on: preempt_hog's worst gap at 1 P under gdb 60 ms,
// under strace 54 (9 and 28 with a signal every millisecond).
constexpr int64_t kTracedSliceNs = 20 * 1000 * 1000;

// Whether the running G's P has anything else to run: a queued G, a G in
// the global queue, or a due timer (its G becomes runnable when it fires).
// Without any, a G that runs on past its slice is left alone: preempting a
// G that would be picked again at once costs a signal, and a traced
// process (gdb, strace) a tracer round trip, for nothing.
bool p_has_other_work(P* pp, int64_t now) {
  return !pp->runq.empty() || sched.runq_size.load(std::memory_order_relaxed) > 0 ||
         pp->timers.when0.load(std::memory_order_relaxed) <= now;
}

// Whether a P whose M sits still in the kernel is worth taking back now:
// something waits to run, on it or on any other P's queue (the taken P
// could steal that). Otherwise only after kStillMaxNs: a P left idle would
// run nothing, and on a loaded machine an M that merely waits for a CPU
// sits still for many rounds (poking it then costs it a signal and kept
// sysmon at its shortest period, 14% of a CPU under haproxy at 2 Ps). A
// really blocked M is still found within kStillMaxNs; Gs whose fds become
// ready meanwhile reach the global queue through sysmon's own harvest.
constexpr int64_t kStillMaxNs = 10 * 1000 * 1000;
bool still_p_wanted(P* pp, int64_t now) {
  return p_has_other_work(pp, now) || queued_anywhere() || now - pp->still_since >= kStillMaxNs;
}

// Sends sysmon's signal to mp, unless one sent less than kPokeStaleNs ago
// is still on its way: a second would only merge with it in the kernel (a
// standard signal is pending once). One older than that is taken as
// merged with another instance of the signal: the count restarts. The
// handler tells a poke by its mark, not by this count (poke.cpp).
constexpr int64_t kPokeStaleNs = 10 * 1000 * 1000;
void poke_m(M* mp, int64_t now) {
  if (mp->pokes.load(std::memory_order_relaxed) != 0 && now - mp->poke_sent < kPokeStaleNs) return;
  mp->poke_sent = now;
  mp->pokes.store(1, std::memory_order_relaxed);
  if (send_runtime_poke(mp->tid) < 0) mp->pokes.store(0, std::memory_order_relaxed);
}

// The scheduler state of kernel thread `tid` of this process, as the
// kernel reports it in /proc ('R' running or waiting for a CPU, 'S' asleep,
// 'D' in an uninterruptible wait, 't'/'T' stopped by a tracer or by job
// control), or 0 when it cannot be read. Read with raw calls (sysmon calls
// no interposed function); three system calls, 4-5 us on the VM without
// FSGSBASE.
char thread_state(long tid) {
  char path[48];
  char* e = path + sizeof path - 1;
  char* p = fmt_str(path, e, "/proc/self/task/");
  p = fmt_u64(p, e, static_cast<uint64_t>(tid));
  p = fmt_str(p, e, "/stat");
  *p = 0;
  long fd = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  long got = raw_syscall(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1);
  raw_syscall(SYS_close, fd);
  if (got <= 0) return 0;
  buf[got] = 0;
  // "tid (comm) S ...": the state follows the last ')' (comm may hold any byte).
  char* close_paren = nullptr;
  for (char* c = buf; *c; c++)
    if (*c == ')') close_paren = c;
  if (!close_paren || close_paren[1] != ' ') return 0;
  return close_paren[2];
}

// Whether a tracer is attached to the process (TracerPid in /proc/self/
// status, the initial thread's), asked at most every 100 ms and handed to
// the poke handler (poke_set_traced). Not while a seccomp filter could trap
// the open (seccomp_seen). The file stays open near the top of the fd
// range (core/rtfd.h, kProbe) and is re-read from offset 0: an open every
// 100 ms would take the lowest free fd number for a moment each time,
// which the program may be about to count on. Closed in a child of fork,
// where /proc/self is another process.
constinit int g_status_fd = -1;
void traced_check(int64_t now) {
  static constinit int64_t next = 0;
  if (now < next || seccomp_seen(now)) return;
  next = now + 100 * 1000 * 1000;
  if (g_status_fd >= 0 && !rtfd_is(g_status_fd)) g_status_fd = -1;  // the program took the number
  if (g_status_fd < 0) {
    long fd = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/status"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    g_status_fd = rtfd_move_high(static_cast<int>(fd));
    rtfd_add(g_status_fd, RtfdKind::kProbe);
  }
  char buf[4096];
  long got = raw_syscall6(SYS_pread64, g_status_fd, reinterpret_cast<long>(buf), sizeof buf - 1, 0, 0, 0);
  if (got <= 0) return;
  buf[got] = 0;
  static constexpr char kKey[] = "\nTracerPid:";
  for (char* c = buf; *c; c++) {
    if (__builtin_memcmp(c, kKey, sizeof kKey - 1) != 0) continue;
    c += sizeof kKey - 1;
    while (*c == ' ' || *c == '\t') c++;
    poke_set_traced(*c >= '1' && *c <= '9');
    return;
  }
}

// Whether gp, running for `ran` ns, may take a wake mark (kPreemptWake*):
// a user G, neither wired (each yield of one hands its P to another M) nor
// real-time, and, if its last walk was deep, only after kPreemptNs (each
// asynchronous stop costs it that walk).
bool wake_markable(const G* gp, int64_t ran) {
  return gp && !gp->is_g0 && !gp->lockedm && !gp->ks_rt.load(std::memory_order_relaxed) &&
         (!gp->deep_walk.load(std::memory_order_relaxed) || ran >= kPreemptNs);
}

// Signals the M of every P that sits still with its M asleep in the kernel.
bool detect_blocked(int64_t now) {
  bool any = false;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    M* mp = pp->m;
    if (pp->status.load(std::memory_order_acquire) != kPRunning || !mp) {
      pp->sysmon_m = nullptr;
      continue;
    }
    uint32_t tick = __atomic_load_n(&pp->schedtick, __ATOMIC_RELAXED);
    if (pp->sysmon_m != mp || pp->sysmon_sched != tick) {
      pp->sysmon_m = mp;
      pp->sysmon_sched = tick;
      pp->run_since = now;
      pp->poke_gap = 0;
      pp->poke_after = 0;
      pp->still_since = 0;
      pp->over_cpu = -1;
      // Its clock is read from the next round on that finds the same
      // tick: on a P whose Gs park and wake often (an event loop per
      // thread), the tick moves nearly every round, and a reading here
      // was half of sysmon's system calls (one clock read is a system
      // call, 0.85 us on the VM without FSGSBASE). A blocked M is then
      // found one round later.
      mp->sysmon_cpu = -1;
      continue;
    }
    int64_t cpu = thread_cpu_ns(mp->tid);
    if (cpu < 0 || cpu != mp->sysmon_cpu || mp->sysmon_cpu < 0) {  // it is running (or first read): not blocked
      mp->sysmon_cpu = cpu;
      pp->still_since = 0;
      // The same time slice for kPreemptNs: one G that makes no scheduling
      // point, or Gs handing the P to each other through next (the tick
      // stands still for those, sched.cpp execute), while something else
      // waits for the P. Mark the running G: its next park or yield, or
      // the return of its next interposed call, ends the slice
      // (next_local, preempt_check). And signal it, so a G that never parks
      // stops at a safe point. Again every millisecond while the slice
      // goes on.
      // A timer due on this P while its G has run kWakePreemptNs: the
      // sleeper it wakes takes the P at once (kPreemptWake), as the kernel
      // runs a thread whose sleep ended ahead of one that has been
      // computing; without this it waited for the slice's end, 2-4 ms, and
      // then behind the ring (a 1 ms usleep beside two hogs at 1 P ended
      // 11-15 ms late on average; natively on one CPU 0.5 ms).
      bool marked = false, wake = false;
      bool timer_due = pp->timers.when0.load(std::memory_order_relaxed) <= now;
      if (now - pp->run_since >= kPreemptNs || (timer_due && now - pp->run_since >= kWakePreemptNs)) {
        gmem_peek_begin();  // the G may exit and be unmapped meanwhile
        G* gp = mp->curg;
        // A real-time G's slice is the kernel's real-time bandwidth
        // (ksched.h); a deep-stacked one's is longer (kDeepSliceNs).
        int64_t slice = kPreemptNs;
        if (gp && gp->ks_rt.load(std::memory_order_relaxed)) {
          slice = kRtSliceNs;
        } else if (gp && gp->deep_walk.load(std::memory_order_relaxed)) {
          slice = kDeepSliceNs;
        }
        // Under a tracer the signal waits until the M has run
        // kTracedSliceNs past the slice (the mark alone acts at the G's
        // next call before that). CPU time, not wall time: the tracer's
        // stops (gdb stops every thread for each event it handles) do not
        // count.
        if (pp->over_cpu < 0) pp->over_cpu = cpu;
        bool async = preempt_enabled() && (!poke_traced() || cpu - pp->over_cpu >= kTracedSliceNs);
        if (gp && !gp->is_g0 && now - pp->run_since >= slice && p_has_other_work(pp, now)) {
          // A walk under a seccomp filter could be trapped (preempt.h):
          // asked here, off the poke handler, at most once a slice.
          if (preempt_enabled() && seccomp_seen(now)) preempt_off_under_seccomp();
          gp->preempt.store(async ? kPreemptAsync : kPreemptMarked, std::memory_order_relaxed);
          marked = true;
        } else if (timer_due && wake_markable(gp, now - pp->run_since)) {
          // Again each round while the signal has not been taken (it found
          // the G in the runtime's code, which leaves the request as it is).
          uint32_t was = gp->preempt.load(std::memory_order_relaxed);
          wake = (was == kPreemptNone || was == kPreemptWakeAsync) &&
                 gp->preempt.compare_exchange_strong(was, async ? kPreemptWakeAsync : kPreemptWake,
                                                     std::memory_order_relaxed);
        }
        pp->sysmon_wakeable = wake_markable(gp, now - pp->run_since);  // for wake_preempt_delay
        gmem_peek_end();
        if (marked) {
          if (async) poke_m(mp, now);
          pp->run_since = now - slice + 1000 * 1000;
        } else if (wake && async) {
          poke_m(mp, now);
        }
      }
      continue;
    }
    // Its CPU clock stood still: asleep in the kernel, or only waiting for
    // a CPU on a loaded machine (the signal then finds it outside a system
    // call and does nothing). The first signal goes at once; while the
    // tick stays, more follow with a doubling gap up to kPokeGapMaxNs, so
    // an M that waits for a CPU is not kept busy with signals. run_since
    // stays: waiting for a CPU does not start a new time slice (restarting
    // the slice's clock here let a hand-off chain keep its P for hundreds
    // of milliseconds).
    if (pp->still_since == 0) pp->still_since = now;
    if (now < pp->poke_after || !still_p_wanted(pp, now)) continue;
    pp->poke_gap = pp->poke_gap == 0 ? kSysmonMinNs : std::min(2 * pp->poke_gap, kPokeGapMaxNs);
    pp->poke_after = now + pp->poke_gap;
    // Still standing after the doubling gaps: its state from /proc, unless
    // a seccomp filter could trap the open (sysmon blocks SIGSYS: the
    // kernel would end the process). A stopped thread (SIGSTOP, a tracer's
    // stop) cannot take the signal, and under a tracer each one costs the
    // tracer a stop it did not ask for; one that only waits for a CPU
    // ('R') is in no call, and the signal would find it outside one and do
    // nothing. Asked only here (and before every signal under a tracer,
    // where a signal to a stopped thread costs gdb a double report: see
    // kTracedSliceNs), not before every signal: the open takes the lowest
    // free fd number for a moment, which the program may be about to count
    // on (asked before every signal, a test program's select on an fd it
    // had just closed found a file there).
    if ((pp->poke_gap == kPokeGapMaxNs || poke_traced()) && !seccomp_seen(now)) {
      char st = thread_state(mp->tid);
      if (st == 'R' || st == 't' || st == 'T') continue;
    }
    poke_m(mp, now);
    any = true;
  }
  (void)now;
  return any;
}

// sysmon's longest sleep in the netpoller: a P that goes idle meanwhile
// cannot have its M sleep there instead (its Gs' fds then wake sysmon,
// which readies them through the global queue and an M's wake-up: one hop
// more), so sysmon looks again this soon whether every P is still busy.
constexpr int64_t kPollSleepMaxNs = 500 * 1000;

// How long mp's G has run since it was switched in (its M's CPU clock
// against the G's start on it: an estimate from above, so this errs
// short), 0 for no G; gp: that G. Under gmem_peek (the G may exit).
// When the wall time since the M's last switch to a G is below `need`,
// that time instead: the G cannot have run longer, and the clock read (a
// system call) is saved; a switch racing with this read makes the bound
// larger, never smaller.
int64_t m_g_ran(M* mp, G** gp_out, int64_t need) {
  G* gp = mp->curg;
  *gp_out = gp;
  if (!gp || gp->is_g0) return 0;
  if (uint64_t in = mp->g_in_tsc.load(std::memory_order_relaxed)) {
    int64_t wall = tsc_span_ns(arch_cycles() - in);
    if (wall >= 0 && wall < need) return wall;
  }
  int64_t cpu = thread_cpu_ns(mp->tid);
  if (gp->cpu_m.load(std::memory_order_relaxed) != mp) return 0;
  return cpu - gp->cpu_start.load(std::memory_order_relaxed);
}

// Every P runs a G that has run kPollComputeNs since it was switched in:
// none of them is about to run out of Gs and harvest the netpoller. Not
// kWakePreemptNs: Gs that compute for a few hundred µs between their reads
// (four pipe readers fed by a writer that never waits) harvest their fds
// well enough themselves, and sysmon's harvest in their place, one hop
// more per wake-up, cost them 10-25%.
constexpr int64_t kPollComputeNs = 300 * 1000;
bool all_ps_computing() {
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    M* mp = pp->m;
    if (pp->status.load(std::memory_order_acquire) != kPRunning || !mp) return false;
    G* gp;
    gmem_peek_begin();
    int64_t ran = m_g_ran(mp, &gp, kPollComputeNs);
    gmem_peek_end();
    if (ran < kPollComputeNs) return false;
  }
  return true;
}

// Gs that sysmon's own poll of the netpoller readied (into the global
// queue's woken part, which every P takes from first): up to that many
// busy Ps whose G has run kWakePreemptNs give their P to them
// (kPreemptWake, as for a due timer). A P that went idle meanwhile gets an
// M (wakep), which also becomes the netpoller again if nothing is left to
// run (find_runnable).
bool poll_woken(int woken) {
  if (woken <= 0) return false;
  int64_t now = nanotime();
  for (uint32_t i = 0; i < sched.nprocs && woken > 0; i++) {
    P* pp = &sched.allp[i];
    M* mp = pp->m;
    if (pp->status.load(std::memory_order_acquire) != kPRunning || !mp) continue;
    gmem_peek_begin();  // the G may exit and be unmapped meanwhile
    G* gp;
    int64_t ran = m_g_ran(mp, &gp, kWakePreemptNs);
    uint32_t none = kPreemptNone;
    bool wake = ran >= kWakePreemptNs && wake_markable(gp, ran) &&
                gp->preempt.compare_exchange_strong(none, preempt_enabled() ? kPreemptWakeAsync : kPreemptWake,
                                                    std::memory_order_relaxed);
    gmem_peek_end();
    if (!wake) continue;
    if (preempt_enabled()) poke_m(mp, now);
    woken--;
  }
  if (sched.npidle.load(std::memory_order_relaxed) > 0) wakep();
  return true;
}

// sysmon's sleep while some P runs: delay, or less, to be up when a timer
// of a running P falls due and its G has run kWakePreemptNs (detect_blocked
// then hands the P to the timer's G), but at least kSysmonMinNs.
int64_t wake_preempt_delay(int64_t delay) {
  int64_t at = kNever;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    int64_t when = pp->timers.when0.load(std::memory_order_relaxed);
    if (when == kNever || pp->status.load(std::memory_order_relaxed) != kPRunning || !pp->sysmon_wakeable) continue;
    at = std::min(at, std::max(when, pp->run_since + kWakePreemptNs));
  }
  if (at == kNever) return delay;
  return std::clamp(at - nanotime(), kSysmonMinNs, delay);
}

// One round: retake Ps stuck in a syscall since the previous round.
bool retake(int64_t now) {
  bool any = false;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    if (pp->status.load(std::memory_order_acquire) != kPSyscall) {
      pp->calls_since = 0;
      continue;
    }
    uint32_t t = pp->syscalltick.load(std::memory_order_acquire);
    bool waiting = !pp->runq.empty() || sched.runq_size.load(std::memory_order_relaxed) > 0;
    if (!waiting) pp->calls_since = 0;
    else if (pp->calls_since == 0) pp->calls_since = now;
    if (t != pp->sysmon_tick) {
      pp->sysmon_tick = t;
      pp->sysmon_when = now;
      // A new call since last round, but if every round for kCallsHoldNs
      // found the P in one while Gs waited for it, its G spends its time in
      // calls of a few hundred µs that each end before a second round
      // sees them: the P sat idle through them (known gap 37: a
      // stop-the-world test took 35 s instead of 3). Taken as for a long
      // call; the G's M finds it gone on return (exitsyscall).
      if (pp->calls_since == 0 || now - pp->calls_since < kCallsHoldNs) continue;
    } else {
      // Same syscall as last round: its M may be asleep in the kernel
      // (exitsyscall_fast then refreshes the M's CPU clock base).
      pp->syscall_long.store(true, std::memory_order_relaxed);
    }
    // Leave it alone if it has nothing queued
    // and others are idle anyway, unless it has been 10 ms.
    if (pp->runq.empty() && sched.nmspinning.load() + sched.npidle.load() > 0 && now - pp->sysmon_when < kSysmonMaxNs)
      continue;
    uint32_t s = kPSyscall;
    if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) {
      pp->calls_since = 0;  // its next owner's calls start a new count
      any = true;
      mcache_taken(pp);
      handoffp(pp);
    }
  }
  return any;
}

constinit std::atomic<int> g_sysmon_tid{0};

void* sysmon_main(void*) {
  // A cached stack's poison, as in mstart (sched.cpp).
  san_unpoison_below(tcb_field<void*>(reinterpret_cast<void*>(arch_get_fs()), tcbo::kStackBlock));
  // No handler of the program's runs on sysmon: it is no M (it holds
  // sched.lock in handoffp without an M to count it, futex.h) and no
  // thread of the program's. It is born with every signal blocked
  // (os_thread_create); blocking them again here keeps that true whoever
  // started it, so the kernel always picks another thread.
  g_sysmon_tid.store(raw_gettid(), std::memory_order_release);
  sigset_t all;
  sigfillset(&all);
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), 0, 8);
  int64_t delay = kSysmonMinNs;
  int idle = 0;
  int follow_up = 0;  // rounds at the shortest period still owed (below)
  int64_t last_watch = 0;
  bool mem_pending = false;  // free Gs or parked stacks to give back (gmem, sched)
  for (;;) {
    bool polled = false;  // this round's sleep readied Gs from the netpoller
    // Sleep so that entersyscall wakes us only when every P is idle (nothing
    // ran, so a syscall is news); otherwise the back-off alone (<= 10 ms)
    // bounds how late a blocked call is noticed, and quick syscalls never
    // pay a futex wake.
    // With every P idle and the back-off at its end, nothing can need
    // sysmon until a P gets busy again, and sysmon_p_busy wakes it then:
    // sleep without a deadline (a deadline-less idle process costs no CPU).
    // The store/load pairs with npidle's decrement and sysmon_p_busy's load.
    const auto nprocs = static_cast<int32_t>(sched.nprocs);
    if (follow_up == 0 && delay > kSysmonMinNs * 50 && sched.npidle.load(std::memory_order_relaxed) == nprocs) {
      g_sysmon_sleeping_long.store(1, std::memory_order_seq_cst);
      // Gs waiting for fds with no M able to sleep in the netpoller (its
      // eventfd was given up, netpoll.cpp) need sysmon's 10 ms harvest.
      // Signals waiting for a G (sigpend.h): look again on the back-off.
      // Watched futex waiters (sema.h): look at their words on the back-off.
      // Memory to give back: look again on the back-off.
      int64_t ns =
          delay >= kSysmonMaxNs && !netpoll_worth_polling() && !sigpend_any() && !sema_watching() && !mem_pending
              ? trace_period_ns()
              : delay;
      if (sched.npidle.load(std::memory_order_seq_cst) == nprocs) sysmon_sleep(ns);
      g_sysmon_sleeping_long.store(0, std::memory_order_seq_cst);
    } else {
      int64_t ns = wake_preempt_delay(follow_up > 0 ? kSysmonMinNs : delay);
      // Every P busy and Gs waiting on fds: awake when the last harvest
      // turns kPollStaleNs old, not up to a whole delay after.
      if (sched.npidle.load(std::memory_order_relaxed) == 0 && netpoll_worth_polling())
        ns = std::clamp(netpoll_last_poll() + kPollStaleNs - nanotime(), kSysmonMinNs, ns);
      // Every P busy with a G that has computed for a while (a P that runs
      // out of Gs harvests the netpoller itself, and one whose Gs park and
      // ready each other soon does; sysmon's own harvest there cost an
      // echo server 40% of its rate: all_ps_computing) and Gs waiting on
      // fds: nobody sleeps in the netpoller (only an M with nothing to run
      // does), so sysmon does, for its sleep, and gives a P to the Gs of
      // the fds that become ready.
      if (sched.npidle.load(std::memory_order_relaxed) == 0 && netpoll_worth_polling() && all_ps_computing()) {
        struct epoll_event ev[64];
        int n = netpoll_block(ev, 64, nanotime() + std::min(ns, kPollSleepMaxNs));
        if (n < 0) raw_sleep_ns(ns);
        else if (n > 0) polled = poll_woken(netpoll_dispatch(ev, n));
        // A P that went idle meanwhile found the poller's role taken and
        // its M asleep without it: an M for it, which becomes the poller
        // again if it finds nothing to run.
        if (n >= 0 && sched.npidle.load(std::memory_order_relaxed) > 0 && netpoll_worth_polling()) wakep();
      } else {
        raw_sleep_ns(ns);
      }
    }
    newm_drain();
    int64_t now = nanotime();
    mem_pending = gmem_reclaim();
    mem_pending |= gfree_scavenge(now);
    uint64_t parks = 0;
    for (uint32_t i = 0; i < sched.nprocs; i++) parks += sched.allp[i].parks.load(std::memory_order_relaxed);
    if (!seccomp_seen(now)) mem_pending |= gmem_shrink_parked(now, parks);
    trace_tick(now);
    if (poke_enabled() || compact_count() != 0) traced_check(now);
    bool busy = retake(now);
    netpoll_deliver_signals();
    // Not counted as work: a signal every G blocks stays pending, as in the
    // kernel, and must not keep sysmon at its shortest period.
    sigpend_deliver();
    // No P has run out of work for kPollStaleNs (one that does harvests
    // ready fds itself): harvest for them, and let the woken Gs displace
    // Gs that have run a while, as a due timer's sleeper does.
    if (netpoll_worth_polling() && now - netpoll_last_poll() > kPollStaleNs) {
      int woken = netpoll_poll_now();
      if (woken > 0) polled |= poll_woken(woken);
    }
    bool poked = poke_enabled() && detect_blocked(now);
    // Gs in the futex interposer's FUTEX_WAIT whose word changed: woken by
    // a thread the runtime did not create (sema.h). Every kWatchNs at most,
    // so a wake from outside is seen within kWatchNs plus sysmon's delay.
    if (now - last_watch >= kWatchNs && sema_watching()) {
      last_watch = now;
      sema_watch_scan();
    }
    // Only a P taken from a call resets the back-off (as in Go's sysmon).
    // After Gs readied from the netpoller (they will soon wait on their
    // fds again: sysmon may have to be back in epoll_wait for them) one
    // round at the shortest period follows; after an M signalled because
    // its CPU clock stood still, two (if it was blocked in the kernel, its
    // handler has marked its P as in a system call by the next round,
    // which sees a new syscalltick, and the one after retakes the P); and
    // the back-off goes on. Each used to reset it: on 2 CPUs shared by
    // memcached's Ms and its clients an M waited for a CPU in one round of
    // eight, fds became ready all the time, and sysmon ran 16,000 rounds a
    // second at its shortest period, 15% of the process's CPU time.
    follow_up = poked ? 2 : polled ? 1 : std::max(follow_up - 1, 0);
    if (busy) {
      idle = 0;
      delay = kSysmonMinNs;
    } else if (++idle > 50) {
      delay = delay * 2 > kSysmonMaxNs ? kSysmonMaxNs : delay * 2;
      // While some P runs Gs, look at least every 2 ms: a G due for
      // preemption (kPreemptNs) then waits at most 2 ms more.
      if (sched.npidle.load(std::memory_order_relaxed) < static_cast<int32_t>(sched.nprocs) && delay > kBusyMaxNs)
        delay = kBusyMaxNs;
      // Every P busy and Gs waiting on fds: look every kPollStaleNs.
      if (sched.npidle.load(std::memory_order_relaxed) == 0 && netpoll_worth_polling() && delay > kPollStaleNs)
        delay = kPollStaleNs;
      if (delay > trace_period_ns()) delay = trace_period_ns();
    }
  }
}

}  // namespace

void sysmon_wake() {
  if (g_sysmon_wake.exchange(1, std::memory_order_release) == 0) futex_wake(&g_sysmon_wake, 1);
}

bool on_sysmon() {
  int t = g_sysmon_tid.load(std::memory_order_acquire);
  return t != 0 && t == raw_gettid();
}

int sysmon_tid() { return g_sysmon_tid.load(std::memory_order_acquire); }

MNP_STARTUP void sysmon_after_fork() {
  poke_after_fork();
  if (g_status_fd >= 0 && rtfd_is(g_status_fd)) {  // not if the program took the number meanwhile
    rtfd_remove(g_status_fd);
    raw_syscall(SYS_close, g_status_fd);
  }
  store_changed(g_status_fd, -1);
  poke_set_traced(false);
  store_changed(g_sysmon_tid, 0);
  store_changed(g_sysmon_sleeping_long, 0);
  store_changed(g_sysmon_wake, 0);
  g_sysmon_start_lock.reset_in_child();
  // No thread survived: the child starts its own sysmon when it needs one
  // (sysmon_ensure). The signal action is inherited.
  if (sysmon_up.load(std::memory_order_relaxed)) sysmon_up.store(false, std::memory_order_release);
}

MNP_STARTUP void sysmon_init() {
  poke_init();
  preempt_init();
  trace_init();
  // A scheduler trace is wanted from the start, one thread or not.
  if (trace_period_ns() != kNever) sysmon_ensure();
}

void sysmon_ensure_slow() {
  ErrnoKeeper keep_errno;  // glibc's pthread_create and malloc, on a G's behalf
  LockGuard lk(g_sysmon_start_lock);
  if (sysmon_up.load(std::memory_order_relaxed)) return;
  m0_g0_ensure();  // M0 may switch to its scheduler from now on
  mthread_prepare();
  poke_install_locked();
  // Also what turns glibc multi-threaded (its locks, its SIGSETXID
  // handler): Ms' threads are made without glibc (core/mthread.h).
  if (os_thread_start(sysmon_main, nullptr) != 0) fatal("cannot start sysmon (pthread_create failed)");
  sysmon_up.store(true, std::memory_order_release);
}

void sysmon_wake_for_newm() {
  g_sysmon_sleeping_long.store(0, std::memory_order_relaxed);
  sysmon_wake();
}

void sysmon_wake_from_signal() { sysmon_wake(); }

MNP_STARTUP void sysmon_p_busy() {
  if (MNP_UNLIKELY(g_sysmon_sleeping_long.load(std::memory_order_seq_cst)) &&
      g_sysmon_sleeping_long.exchange(0, std::memory_order_acq_rel))
    sysmon_wake();
}

}  // namespace mnp
