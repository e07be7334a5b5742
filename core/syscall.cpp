// core/syscall.cpp — entersyscall/exitsyscall and sysmon.
//
// A G about to block in the kernel keeps its P but marks it kPSyscall
// (entersyscall): no lock, one store. If the call returns quickly the G takes
// the P back with one CAS (exitsyscall fast path). If it does not, sysmon
// notices the P stayed in the same syscall for a whole round, CASes it to
// kPIdle and hands it to another M (retake + handoff), so the P's queued Gs
// keep running. The returning G then finds its P gone: it takes any idle P,
// or queues itself on the global run queue and its M goes idle.
//
// Rejected: handing the P off on every blocking call (a futex wake and a
// thread switch per read(), even when the read does not block), and no
// hand-off at all (one blocked read stalls every G queued behind it).
//
// sysmon is a kernel thread without a P. It sleeps 20 us between rounds,
// doubling up to 10 ms after 50 rounds with nothing to do, and entersyscall
// wakes it when it sleeps long, so a blocked call is noticed within ~20 us.
#include <sys/mman.h>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {

void startm_for(P* pp, bool spinning);  // sched.cpp
void pidleput_for(P* pp);               // sched.cpp, takes Sched::lock
P* pidleget_for();                      // sched.cpp, takes Sched::lock
void exitsyscall_park(G* gp);           // sched.cpp: queue gp, park the M
int os_thread_start(void* (*fn)(void*), void* arg);  // sched.cpp

namespace {

constexpr int64_t kSysmonMinNs = 20 * 1000;
constexpr int64_t kSysmonMaxNs = 10 * 1000 * 1000;
constinit Note g_sysmon_note;
constinit std::atomic<int32_t> g_sysmon_sleeping_long{0};

// Gives pp (just retaken) to an M if it has work, else to the idle list.
void handoffp(P* pp) {
  if (!pp->runq.empty() || sched.runq_size.load(std::memory_order_relaxed) > 0 ||
      pp->timers.when0.load(std::memory_order_relaxed) != kNever) {
    startm_for(pp, false);
    return;
  }
  // No local work: if nobody is spinning or idle, an M should look around.
  int32_t zero = 0;
  if (sched.nmspinning.load() + sched.npidle.load() == 0 && sched.nmspinning.compare_exchange_strong(zero, 1)) {
    startm_for(pp, true);
    return;
  }
  pidleput_for(pp);
}

// One round: retake Ps stuck in a syscall since the previous round.
bool retake(int64_t now) {
  bool any = false;
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    if (pp->status.load(std::memory_order_acquire) != kPSyscall) continue;
    uint32_t t = pp->syscalltick.load(std::memory_order_acquire);
    if (t != pp->sysmon_tick) {
      pp->sysmon_tick = t;
      pp->sysmon_when = now;
      continue;
    }
    // Same syscall as last round. Leave it alone if it has nothing queued
    // and others are idle anyway, unless it has been 10 ms.
    if (pp->runq.empty() && sched.nmspinning.load() + sched.npidle.load() > 0 &&
        now - pp->sysmon_when < kSysmonMaxNs)
      continue;
    uint32_t s = kPSyscall;
    if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) {
      any = true;
      handoffp(pp);
    }
  }
  return any;
}

void* sysmon_main(void*) {
  int64_t delay = kSysmonMinNs;
  int idle = 0;
  for (;;) {
    if (delay > kSysmonMinNs * 50) {
      g_sysmon_sleeping_long.store(1, std::memory_order_seq_cst);
      g_sysmon_note.sleep_for(delay);
      g_sysmon_sleeping_long.store(0, std::memory_order_seq_cst);
      g_sysmon_note.clear();
    } else {
      struct timespec ts = {0, static_cast<long>(delay)};
      raw_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
    }
    if (retake(nanotime())) {
      idle = 0;
      delay = kSysmonMinNs;
    } else if (++idle > 50) {
      delay = delay * 2 > kSysmonMaxNs ? kSysmonMaxNs : delay * 2;
    }
  }
}

}  // namespace

void sysmon_start() {
  if (os_thread_start(sysmon_main, nullptr) != 0)
    raw_print("warning: cannot start sysmon; a G blocked in the kernel keeps its P");
}

void entersyscall() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up) return;
  // A wrapped call inside another (a signal handler calling waitpid while the
  // G blocks in read): the outer one already gave the P up.
  if (gp->syscall_depth++ != 0) return;
  M* mp = gp->m;
  P* pp = mp->p;
  pp->syscalltick.fetch_add(1, std::memory_order_relaxed);
  mp->oldp = pp;
  mp->p = nullptr;
  pp->m = nullptr;
  gp->status.store(kGSyscall, std::memory_order_relaxed);
  pp->status.store(kPSyscall, std::memory_order_release);
  if (MNP_UNLIKELY(g_sysmon_sleeping_long.load(std::memory_order_relaxed)) &&
      g_sysmon_sleeping_long.exchange(0, std::memory_order_acq_rel))
    g_sysmon_note.wakeup();
}

void entersyscall_block() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up) return;
  entersyscall();
  if (gp->syscall_depth != 1) return;
  M* mp = gp->m;
  P* pp = mp->oldp;
  uint32_t s = kPSyscall;
  if (pp->status.compare_exchange_strong(s, kPIdle, std::memory_order_acq_rel)) handoffp(pp);
}

void exitsyscall() {
  G* gp = tls_g;
  if (!gp || gp->is_g0 || !runtime_up) return;
  if (--gp->syscall_depth != 0) return;
  M* mp = gp->m;
  P* pp = mp->oldp;
  mp->oldp = nullptr;
  uint32_t s = kPSyscall;
  if (MNP_LIKELY(pp->status.compare_exchange_strong(s, kPRunning, std::memory_order_acq_rel))) {
    pp->m = mp;
    mp->p = pp;
    gp->status.store(kGRunning, std::memory_order_relaxed);
    return;
  }
  // Retaken: any idle P will do.
  if (P* p2 = pidleget_for()) {
    p2->m = mp;
    mp->p = p2;
    p2->status.store(kPRunning, std::memory_order_relaxed);
    gp->status.store(kGRunning, std::memory_order_relaxed);
    return;
  }
  exitsyscall_park(gp);
}

}  // namespace mnp
