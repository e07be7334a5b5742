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
// True if gp's record is the process's defaults.
bool ksched_is_default(const G* gp);
// The process's default CPU mask and the size the kernel reports for it.
const cpu_set_t& ksched_default_mask();
long ksched_mask_bytes();
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

// A change to t's scheduling record: the caller's own is applied to its
// kernel thread now (and undone if the kernel refuses it); another G's when
// that G next reaches a scheduling point. `change` edits the record.
template <typename Fn>
int ksched_change(G* t, Fn change) {
  if (t != get_user_g()) {
    change(t);
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
  int err = ksched_apply_self(known ? &had : nullptr);
  if (err) {
    t->sched_policy = pol;
    t->sched_priority = pri;
    t->sched_nice = nice;
    t->affinity_set = aset;
    t->affinity = aff;
    (void)ksched_apply_self();
  }
  return err;
}

}  // namespace mnp
