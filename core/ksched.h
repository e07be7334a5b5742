// core/ksched.h — the kernel scheduling attributes of a G: policy, priority,
// nice value and CPU affinity (docs/ARCHITECTURE.md, "Scheduling
// attributes").
//
// A G has no kernel task, so what the program sets is first a record in the
// G (read back by every getter, for the G itself and for others). A record
// that differs from the process's defaults (the initial thread's values
// when the runtime started) is applied to a kernel thread by wiring the G to
// its M (sched.h, wire_take) and setting the M's own attributes: the kernel
// then schedules that G as it would the native thread. A record back at the
// defaults puts the M back and drops the wiring. Only the G itself can do
// that (it must be running on the M); a change made by another thread marks
// the G and the G applies it at its next scheduling point (park, yield,
// preemption) or at its start. Rejected: applying to the M another G runs
// on (the M runs other Gs next), and keeping every M at the defaults and
// only reporting (what issue 9 found: a SCHED_FIFO thread was not one).
//
// Real-time Gs. Once its M carries a real-time policy (G::ks_rt), the
// kernel decides when a G stops running, as for the native thread: its
// sched_yield is the kernel's (only threads of its priority may run
// meanwhile), not a hand-over of its P, and sysmon ends its time slice only
// after the kernel's real-time bandwidth (950 ms), so that real-time Gs
// holding every P do not starve the others for good, as the kernel's
// throttling lets ordinary threads run. A
// thread created with a real-time priority above its creator's runs at
// once natively (glibc applies the policy before the thread starts, and the
// kernel preempts the creator for it): pthread_create waits (parked) until
// the new G has applied its attributes to its M (ksched_start_wait, the
// G's side in g_trampoline: ksched_started), so the kernel, not the
// creator's remaining time on its P, orders the two from then on.
// Rejected: the creator yielding its P to the child (with two Ps the
// creator resumes on the other before the child's M carries the policy).
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "core/sched.h"

namespace mnp {

// On the initial thread before any M starts: the process's values.
void ksched_init();
// A fresh G: the defaults (pthread_create copies its creator's record after).
void ksched_reset(G* gp);
// Copies the record of `from` (a new thread inherits its creator's).
void ksched_copy(G* to, const G* from);
// Sets gp's G::rt_rank from its record; after every change of the record.
void ksched_rerank(G* gp);
// True if gp's record is the process's defaults.
bool ksched_is_default(const G* gp);
// The process's default CPU mask.
const cpu_set_t& ksched_default_mask();
// The attributes a kernel thread has, as a G's record holds them.
struct KschedRec {
  int policy, priority, nice;
  bool affinity_set;
  cpu_set_t affinity;
};
// On gp, the running G: wires or unwires it and sets its M's attributes to
// the record. 0, or the kernel's errno for the first attribute it refused.
// m_has, if known, is what the M has now: an attribute equal there is not
// set again (a SCHED_FIFO thread that changes only its priority pays one
// system call, not three).
int ksched_apply_self(const KschedRec* m_has = nullptr);
// Another thread changed gp's record: gp applies it at its next scheduling
// point.
void ksched_mark(G* gp);
// At a G's scheduling points and its start: applies a pending change.
void ksched_check_slow();

// True if t's record is a real-time policy with a priority above cur's (a
// creator that is not real-time ranks below every real-time priority).
bool ksched_outranks(const G* t, const G* cur);
// The start hand-shake: the creator calls ksched_start_arm(cur, child)
// before the child can run and ksched_start_wait(cur) after; it returns
// once the child has applied its attributes. The child calls
// ksched_started (g_trampoline) after applying them.
void ksched_start_arm(G* cur, G* child);
void ksched_start_wait(G* cur);
void ksched_started(G* gp);

// A change to t's scheduling record: the caller's own is applied to its
// kernel thread now (and undone if the kernel refuses it); another G's when
// that G next reaches a scheduling point. `change` edits the record.
template <typename Fn>
int ksched_change(G* t, Fn change) {
  if (t != get_user_g()) {
    change(t);
    ksched_rerank(t);
    ksched_mark(t);
    return 0;
  }
  int pol = t->sched_policy, pri = t->sched_priority, nice = t->sched_nice;
  bool aset = t->affinity_set;
  cpu_set_t aff = t->affinity;
  // With no change pending from another thread, the M has the record: the
  // G's own when it is wired, else the defaults, which are then its record.
  bool known = !t->ks_dirty.load(std::memory_order_acquire) && (t->ks_wired || ksched_is_default(t));
  KschedRec had{pol, pri, nice, aset, aff};
  change(t);
  ksched_rerank(t);
  int err = ksched_apply_self(known ? &had : nullptr);
  if (err) {
    t->sched_policy = pol;
    t->sched_priority = pri;
    t->sched_nice = nice;
    t->affinity_set = aset;
    t->affinity = aff;
    ksched_rerank(t);
    (void)ksched_apply_self();
  }
  return err;
}

}  // namespace mnp
