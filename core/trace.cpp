// core/trace.cpp — MNP_DEBUG=schedtrace=MS,scheddetail=1 and the G dump.
//
// One line per period, fixed format (fields never move, so scripts can
// parse it), written with write(2) by sysmon:
//   SCHED <ms>ms: procs=P idleprocs=I threads=M spinningthreads=S
//     idlethreads=IM runqueue=GQ [q0 q1 ...] gs: runnable=R running=U
//     waiting=W syscall=Y dead=D fswrites=F
// (F: FS base writes by every M's context switches so far, M::fs_writes)
// scheddetail=1 adds one line per P, per M and per G after it.
// The G dump walks each parked G's stack from the registers its context
// switch saved (the frame table of arch/x86_64/context.S), with libunwind.
#include "core/trace.h"

#include <ucontext.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/base.h"
#include "core/cpuclock.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "core/tcb.h"
#include "core/unwind.h"

namespace mnp {
namespace {

MNP_START_DATA constinit int64_t g_period_ns = 0;  // 0: no schedtrace
MNP_START_DATA constinit bool g_detail = false;
constinit int64_t g_next = 0;
constinit int64_t g_start = 0;
constinit std::atomic<int> g_dump_requested{0};

struct Line {
  char buf[512];
  char* p = buf;
  char* end = buf + sizeof buf - 2;
  Line& s(const char* t) {
    p = fmt_str(p, end, t);
    return *this;
  }
  Line& u(uint64_t v) {
    p = fmt_u64(p, end, v);
    return *this;
  }
  Line& x(uint64_t v) {
    p = fmt_hex(p, end, v);
    return *this;
  }
  Line& i(int64_t v) {
    if (v < 0) {
      s("-");
      v = -v;
    }
    return u(static_cast<uint64_t>(v));
  }
  void flush() {
    *p++ = '\n';
    raw_syscall(SYS_write, 2, reinterpret_cast<long>(buf), p - buf);
    p = buf;
  }
};

const char* wait_name(uint32_t w) {
  switch (w) {
    case kWaitNone:
      return "";
    case kWaitJoin:
      return "join";
    case kWaitSleep:
      return "sleep";
    case kWaitMutex:
      return "mutex";
    case kWaitCond:
      return "cond";
    case kWaitRwlock:
      return "rwlock";
    case kWaitBarrier:
      return "barrier";
    case kWaitSema:
      return "sema";
    case kWaitFutex:
      return "futex";
    case kWaitNet:
      return "fd";
    case kWaitForever:
      return "exited main";
    case kWaitSchedStart:
      return "rt start";
  }
  return "?";
}

template <typename Fn>
void for_each_g(Fn fn) {
  fn(main_g());
  gmem_for_each_tcb([&](void* tcb) {
    G* g = reinterpret_cast<G*>(static_cast<char*>(tcb) + tcbo::kSize);
    if (!g->is_g0 && g->goid) fn(g);
  });
}

// Stack of a G that is not running, from the frame its switch saved.
void print_stack(G* g) {
  Line l;
  const Unwind* u = unwind_get();
  if (!u) {
    l.s("    (no libunwind: stack not shown)").flush();
    return;
  }
  ucontext_t uc;
  ctx_saved_ucontext(&g->ctx, &uc);
  unw_cursor_t cur;
  if (u->init_local2(&cur, reinterpret_cast<unw_context_t*>(&uc), 0) < 0) return;
  for (int depth = 0; depth < 32; depth++) {
    unw_word_t ip = 0, off = 0;
    u->get_reg(&cur, UNW_REG_IP, &ip);
    char name[128] = "?";
    u->get_proc_name(&cur, name, sizeof name, &off);
    l.s("    ").s(name).s("+").u(off).flush();
    if (u->step(&cur) <= 0) break;
  }
}

void print_summary(int64_t now) {
  uint64_t counts[6] = {};
  for_each_g([&](G* g) {
    uint32_t s = g->status.load(std::memory_order_relaxed);
    if (s < 6) counts[s]++;
  });
  Line l;
  l.s("SCHED ").i((now - g_start) / 1000000).s("ms: procs=").u(sched.nprocs);
  l.s(" idleprocs=").i(sched.npidle.load()).s(" threads=").i(sched.mcount.load());
  l.s(" spinningthreads=").i(sched.nmspinning.load()).s(" idlethreads=").i(sched.nmidle);
  l.s(" runqueue=").i(sched.runq_size.load()).s(" [");
  for (uint32_t i = 0; i < sched.nprocs; i++) l.s(i ? " " : "").u(sched.allp[i].runq.size());
  l.s("] gs: runnable=").u(counts[kGRunnable]).s(" running=").u(counts[kGRunning]);
  l.s(" waiting=").u(counts[kGWaiting]).s(" syscall=").u(counts[kGSyscall]).s(" dead=").u(counts[kGDead]);
  uint64_t fs = 0;
  for (M* m = sched.allm.load(); m; m = m->alllink) fs += m->fs_writes.load(std::memory_order_relaxed);
  l.s(" fswrites=").u(fs);
  l.flush();
}

void print_detail() {
  Line l;
  static constexpr const char* kPStatus[] = {"idle", "running", "syscall"};
  for (uint32_t i = 0; i < sched.nprocs; i++) {
    P* pp = &sched.allp[i];
    M* m = pp->m;
    uint32_t st = pp->status.load();
    l.s("  P").u(i).s(": status=").s(st < 3 ? kPStatus[st] : "?").s(" schedtick=").u(pp->schedtick);
    l.s(" syscalltick=").u(pp->syscalltick.load()).s(" m=").i(m ? static_cast<int64_t>(m->id) : -1);
    l.s(" runqsize=").u(pp->runq.size()).s(" gfreecnt=").i(pp->ngfree).flush();
  }
  for (M* m = sched.allm.load(); m; m = m->alllink) {
    gmem_peek_begin();  // m's G may exit and be unmapped meanwhile
    G* cg = m->curg;
    int64_t goid = cg ? static_cast<int64_t>(cg->goid) : -1;
    gmem_peek_end();
    l.s("  M").u(m->id).s(": tid=").i(m->tid).s(" p=").i(m->p ? static_cast<int64_t>(m->p->id) : -1);
    l.s(" curg=").i(goid).s(" spinning=").u(m->spinning);
    l.s(" fswrites=").u(m->fs_writes.load(std::memory_order_relaxed)).flush();
  }
  for_each_g([&](G* g) {
    uint32_t s = g->status.load(std::memory_order_relaxed);
    if (s == kGIdle) return;
    l.s("  G").u(g->goid).s(": status=").s(gstatus_name(s));
    if (s == kGWaiting) l.s("(").s(wait_name(g->wait_reason)).s(")");
    l.s(" m=").i(g->m && s == kGRunning ? static_cast<int64_t>(g->m->id) : -1).flush();
  });
}

}  // namespace

MNP_STARTUP void trace_init() {
  g_period_ns = config().schedtrace_ms * 1000000;
  g_detail = config().scheddetail;
  if (!g_period_ns && !g_detail) return;  // no clock read: its first faults in the vDSO's pages
  g_start = nanotime();
  g_next = g_start + g_period_ns;
  unwind_get();
}

MNP_STARTUP int64_t trace_period_ns() { return g_period_ns ? g_period_ns : kNever; }

void trace_request_dump() { g_dump_requested.store(1, std::memory_order_relaxed); }

void trace_tick(int64_t now) {
  if (g_period_ns && now >= g_next) {
    g_next = now + g_period_ns;
    print_summary(now);
    if (g_detail) print_detail();
  }
  if (g_dump_requested.exchange(0, std::memory_order_relaxed)) dump_all_gs();
}

// TSC ticks per millisecond: the CPU clocks' calibrated rate when they have
// one (cpuclock.cpp; 0.4% low, its margin), else measured once here (5 ms).
int64_t tsc_per_ms() {
  if (uint64_t mult = g_cpu_tsc_mult.load(std::memory_order_relaxed))
    return static_cast<int64_t>((static_cast<unsigned __int128>(1000000) << 32) / mult);
  static constinit int64_t rate = 0;
  if (!rate) {
    int64_t t0 = nanotime(), c0 = static_cast<int64_t>(arch_cycles());
    raw_sleep_ns(5 * 1000 * 1000);
    int64_t t1 = nanotime(), c1 = static_cast<int64_t>(arch_cycles());
    rate = (c1 - c0) * 1000000 / (t1 - t0 > 0 ? t1 - t0 : 1);
    if (rate <= 0) rate = 1;
  }
  return rate;
}

void dump_all_gs() {
  unwind_get();
  int64_t now = nanotime();
  int64_t rate = tsc_per_ms(), tsc = static_cast<int64_t>(arch_cycles());
  print_summary(now);
  Line l;
  for_each_g([&](G* g) {
    uint32_t s = g->status.load(std::memory_order_acquire);
    if (s == kGIdle) return;
    l.s("G ").u(g->goid).s(" [").s(gstatus_name(s));
    if (s == kGWaiting) {
      l.s(", ").s(wait_name(g->wait_reason));
      if (g->park_time) l.s(", ").i((tsc - g->park_time) / rate).s(" ms");
    }
    l.s("]").s(g->name[0] ? " name=" : "").s(g->name);
    // The signals it blocks: a handler that never comes is often a mask.
    if (uint64_t m = sigset_bits(&g->sigmask)) l.s(" sigmask=").x(m);
    l.s(":").flush();
    // Only a G that is not running has a saved context to walk.
    if (s == kGWaiting || s == kGRunnable) print_stack(g);
  });
}

}  // namespace mnp
