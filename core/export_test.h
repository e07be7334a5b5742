// core/export_test.h — scheduler internals for the unit tests only (the role
// of Go's runtime/export_test.go).
//
// The unit tests (tests/unit/sched_test.cpp) need functions that live in
// anonymous namespaces of sched.cpp. That file defines the wrappers
// declared here at its end, inside `#ifdef MNP_EXPORT_TEST`; only
// the copy of core/ that tests/unit/meson.build builds for the unit-test
// binary defines the macro. libmnpthread.so is built without it: no code,
// no symbol, no cost there. The wrappers forward and change nothing.
#pragma once

#include <cstdint>

namespace mnp {
struct G;
struct M;
struct P;
}  // namespace mnp

namespace mnp::test {

// sched.cpp
// steal_from: a thief M (holding its own P) takes half of victim's ring, or
// with take_next and an empty ring the victim's next once it sat still for
// steal_next_delay_ns(); returns the G to run, the rest on the thief's ring.
G* steal_from(M* thief, P* victim, bool take_next);
int64_t steal_next_delay_ns();
// resetspinning: a spinning M found work (it stops counting as spinning and
// calls wakep).
void resetspinning(M* mp);

}  // namespace mnp::test
