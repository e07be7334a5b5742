// core/ksched.cpp — kernel scheduling attributes of Gs (design: ksched.h).
#include "core/ksched.h"

#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstring>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {
namespace {

struct Defaults {
  int policy = SCHED_OTHER;
  int priority = 0;
  int nice = 0;
  cpu_set_t mask{};
};
MNP_START_DATA constinit Defaults g_def{};

long ptr(const void* p) { return reinterpret_cast<long>(p); }

bool is_rt(int policy) { return policy == SCHED_FIFO || policy == SCHED_RR; }

// The creator's G::ks_start: armed before the child can run; the child
// sets done; the creator's park commit sets parked unless done came first.
// Whoever moves second acts: the child readies a parked creator, a creator
// that finds done does not park.
enum : uint8_t { kStartNone, kStartArmed, kStartParked, kStartDone };

}  // namespace

MNP_STARTUP void ksched_init() {
  long pol = raw_syscall(SYS_sched_getscheduler, 0);
  if (pol >= 0) g_def.policy = static_cast<int>(pol & ~long{SCHED_RESET_ON_FORK});
  struct sched_param sp = {};
  if (raw_syscall(SYS_sched_getparam, 0, ptr(&sp)) == 0) g_def.priority = sp.sched_priority;
  long pr = raw_syscall(SYS_getpriority, PRIO_PROCESS, 0);  // the kernel's 20 - nice
  if (pr > 0) g_def.nice = static_cast<int>(20 - pr);
  if (raw_syscall(SYS_sched_getaffinity, 0, sizeof g_def.mask, ptr(&g_def.mask)) <= 0) CPU_SET(0, &g_def.mask);
}

MNP_STARTUP void ksched_reset(G* gp) {
  gp->sched_policy = g_def.policy;
  gp->sched_priority = g_def.priority;
  gp->sched_nice = g_def.nice;
  gp->affinity_set = false;
  gp->ks_wired = false;
  gp->ks_dirty.store(0, std::memory_order_relaxed);
  gp->ks_rt.store(0, std::memory_order_relaxed);
  gp->ks_start.store(kStartNone, std::memory_order_relaxed);
  gp->ks_creator = nullptr;
  gp->rt_rank = 0;
}

void ksched_copy(G* to, const G* from) {
  to->sched_policy = from->sched_policy;
  to->sched_priority = from->sched_priority;
  to->sched_nice = from->sched_nice;
  to->affinity_set = from->affinity_set;
  if (from->affinity_set) to->affinity = from->affinity;
  ksched_rerank(to);
}

void ksched_rerank(G* gp) {
  int def = is_rt(g_def.policy) ? g_def.priority : 0;
  bool ranked = is_rt(gp->sched_policy) && gp->sched_priority > def;
  gp->rt_rank = static_cast<uint8_t>(ranked ? gp->sched_priority : 0);
}

bool ksched_is_default(const G* gp) {
  return gp->sched_policy == g_def.policy && gp->sched_priority == g_def.priority && gp->sched_nice == g_def.nice &&
         !gp->affinity_set;
}

const cpu_set_t& ksched_default_mask() { return g_def.mask; }

int ksched_apply_self(const KschedRec* m_has) {
  G* gp = get_user_g();
  if (!gp || !runtime_up) return 0;
  gp->ks_dirty.store(0, std::memory_order_relaxed);
  bool custom = !ksched_is_default(gp);
  if (!custom && !gp->ks_wired) return 0;  // an unwired M has the defaults
  // A process that is still one thread (wire_for_life): every thread made
  // later inherits these attributes, natively and the runtime's alike, so
  // they become the process's defaults, on its one kernel thread, with no
  // wiring and no sysmon (Chromium's zygote lowers its priority with
  // setpriority, then must be one thread to fork). Not for a real-time
  // policy, which the runtime keeps to wired Gs (their slices, sysmon.cpp).
  // Only what changed goes to the kernel (a policy call would clear an
  // inherited SCHED_RESET_ON_FORK, a mask call undo a later taskset).
  if (custom && !gp->ks_wired && still_one_thread(gp) && !is_rt(gp->sched_policy)) {
    struct sched_param sp = {};
    long r = 0;
    if (gp->sched_policy != g_def.policy) r = raw_syscall(SYS_sched_setscheduler, 0, gp->sched_policy, ptr(&sp));
    if (r == 0 && gp->sched_nice != g_def.nice) r = raw_syscall(SYS_setpriority, PRIO_PROCESS, 0, gp->sched_nice);
    const cpu_set_t* m = gp->affinity_set ? &gp->affinity : &g_def.mask;
    if (r == 0 && gp->affinity_set) r = raw_syscall(SYS_sched_setaffinity, 0, sizeof(cpu_set_t), ptr(m));
    if (r < 0) return static_cast<int>(-r);
    g_def.policy = gp->sched_policy;
    g_def.priority = gp->sched_priority;
    g_def.nice = gp->sched_nice;
    g_def.mask = *m;
    gp->affinity_set = false;
    return 0;
  }
  if (custom && !gp->ks_wired) {
    sysmon_ensure();  // started before: a thread inherits its creator's attributes (wire_for_life)
    wire_take();      // from here on this kernel thread is the G's alone
    gp->ks_wired = true;
  }
  int err = 0;
  auto note = [&](long r) {
    if (r < 0 && err == 0) err = static_cast<int>(-r);
  };
  struct sched_param sp = {};
  sp.sched_priority = gp->sched_priority;
  if (!m_has || m_has->policy != gp->sched_policy || m_has->priority != gp->sched_priority)
    note(raw_syscall(SYS_sched_setscheduler, 0, gp->sched_policy, ptr(&sp)));
  if (!m_has || m_has->nice != gp->sched_nice) note(raw_syscall(SYS_setpriority, PRIO_PROCESS, 0, gp->sched_nice));
  const cpu_set_t* m = gp->affinity_set ? &gp->affinity : &g_def.mask;
  const cpu_set_t* had = !m_has ? nullptr : m_has->affinity_set ? &m_has->affinity : &g_def.mask;
  if (!had || !CPU_EQUAL(had, m)) note(raw_syscall(SYS_sched_setaffinity, 0, sizeof(cpu_set_t), ptr(m)));
  // Back at the defaults: the M is like any other again. If the kernel
  // refused to go back (a nice value an unprivileged thread cannot lower),
  // the M keeps the G's values and so stays the G's.
  if (!custom && err == 0) {
    gp->ks_wired = false;
    wire_drop();
  }
  // What the M carries now (on a refusal the caller applies the old record
  // again, which sets this again).
  gp->ks_rt.store(gp->ks_wired && err == 0 && is_rt(gp->sched_policy), std::memory_order_relaxed);
  return err;
}

void ksched_mark(G* gp) { gp->ks_dirty.store(1, std::memory_order_release); }

void ksched_check_slow() { (void)ksched_apply_self(); }

bool ksched_outranks(const G* t, const G* cur) {
  if (!is_rt(t->sched_policy)) return false;
  int mine = is_rt(cur->sched_policy) ? cur->sched_priority : 0;
  return t->sched_priority > mine;
}

void ksched_start_arm(G* cur, G* child) {
  cur->ks_start.store(kStartArmed, std::memory_order_relaxed);
  child->ks_creator = cur;
}

void ksched_start_wait(G* cur) {
  for (;;) {
    park(kWaitSchedStart, [](G* g, void*) {
      uint8_t want = kStartArmed;
      return g->ks_start.compare_exchange_strong(want, kStartParked, std::memory_order_acq_rel);
    });
    // Done, or woken for something else: park again unless the child has
    // been meanwhile (the word goes back to armed first, so its exchange
    // sees whether to ready us).
    uint8_t want = kStartParked;
    if (!cur->ks_start.compare_exchange_strong(want, kStartArmed, std::memory_order_acq_rel)) break;
  }
  cur->ks_start.store(kStartNone, std::memory_order_relaxed);
}

void ksched_started(G* gp) {
  G* c = gp->ks_creator;
  gp->ks_creator = nullptr;
  // After the exchange the creator may return from pthread_create and end:
  // it is touched again only if it was parked, and then it waits for this.
  if (c->ks_start.exchange(kStartDone, std::memory_order_acq_rel) == kStartParked) ready(c, false);
}

}  // namespace mnp
