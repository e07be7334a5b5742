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
  long mask_bytes = sizeof(long);
  cpu_set_t mask{};
};
constinit Defaults g_def{};

long ptr(const void* p) { return reinterpret_cast<long>(p); }

}  // namespace

void ksched_init() {
  long pol = raw_syscall(SYS_sched_getscheduler, 0);
  if (pol >= 0) g_def.policy = static_cast<int>(pol & ~long{SCHED_RESET_ON_FORK});
  struct sched_param sp = {};
  if (raw_syscall(SYS_sched_getparam, 0, ptr(&sp)) == 0) g_def.priority = sp.sched_priority;
  long pr = raw_syscall(SYS_getpriority, PRIO_PROCESS, 0);  // the kernel's 20 - nice
  if (pr > 0) g_def.nice = static_cast<int>(20 - pr);
  long n = raw_syscall(SYS_sched_getaffinity, 0, sizeof g_def.mask, ptr(&g_def.mask));
  if (n > 0) {
    g_def.mask_bytes = n;
  } else {
    CPU_SET(0, &g_def.mask);
  }
}

void ksched_reset(G* gp) {
  gp->sched_policy = g_def.policy;
  gp->sched_priority = g_def.priority;
  gp->sched_nice = g_def.nice;
  gp->affinity_set = false;
  gp->ks_wired = false;
  gp->ks_dirty.store(0, std::memory_order_relaxed);
}

void ksched_copy(G* to, const G* from) {
  to->sched_policy = from->sched_policy;
  to->sched_priority = from->sched_priority;
  to->sched_nice = from->sched_nice;
  to->affinity_set = from->affinity_set;
  if (from->affinity_set) to->affinity = from->affinity;
}

bool ksched_is_default(const G* gp) {
  return gp->sched_policy == g_def.policy && gp->sched_priority == g_def.priority && gp->sched_nice == g_def.nice &&
         !gp->affinity_set;
}

const cpu_set_t& ksched_default_mask() { return g_def.mask; }
long ksched_mask_bytes() { return g_def.mask_bytes; }

int ksched_apply_self(const KschedRec* m_has) {
  G* gp = get_user_g();
  if (!gp || !runtime_up) return 0;
  gp->ks_dirty.store(0, std::memory_order_relaxed);
  bool custom = !ksched_is_default(gp);
  if (!custom && !gp->ks_wired) return 0;  // an unwired M has the defaults
  if (custom && !gp->ks_wired) {
    sysmon_ensure();  // started before: a thread inherits its creator's attributes (wire_for_life)
    wire_take();  // from here on this kernel thread is the G's alone
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
  return err;
}

void ksched_mark(G* gp) { gp->ks_dirty.store(1, std::memory_order_release); }

void ksched_check_slow() { (void)ksched_apply_self(); }

}  // namespace mnp
