// tests/unit/sched_test.cpp — the scheduler (core/sched.cpp, sysmon in
// core/sysmon.cpp) driven directly, through the test-only exports of
// core/export_test.h and a runtime per test (runtime_harness.h).
//
//   SchedPark   a ready() that comes while the G is still on its way into
//               park() (status Running) waits for the park to commit and
//               is never lost; many readiers (Gs and plain threads) ready
//               many parkers, each wake-up exactly once.
//   SchedNext   a G readied by hand-off (next) inherits the time slice:
//               schedtick stands still, while a G from the ring starts a
//               new one; a ping-pong pair at 1 P cannot starve a G queued
//               in the ring (sysmon ends the shared slice) or a timer (the
//               park commit runs the P's due timers).
//   SchedSteal  a thief takes half of a victim's ring; the victim's next
//               only when the ring is empty, only when asked and only after
//               it sat still for the grace period; a P that runs one G that
//               never yields has its queued Gs stolen by the idle P.
//   SchedSpin   a spinning M that finds work wakes another M only if none
//               spins (Go's rule); nmspinning returns to 0 after a burst.
//   Sysmon      a P held by a G blocked in a long system call is retaken
//               and given to another M; a G that runs past its time slice
//               is marked for preemption.
//   SchedStatus a G status change from a state the G is not in aborts
//               with the from, to and found states by name (casgstatus).
//
// Each was seen to fail against a scheduler broken on purpose: ready()
// returning at once for a G still Running (SchedPark.*); switch_g bumping
// schedtick for a G from next (HandoffInheritsTheSlice, deterministically;
// the starvation cases may still pass on a loaded machine, where an M that
// waits for a CPU lets sysmon see the tick stand still); no timers in
// park_commit_cb (PairCannotStarveTimer); slice_over ignored in next_local
// (PairCannotStarveRingG); next stolen without being asked, or without the
// grace (NextOnlyWhenAskedAndAfterTheGrace); a thief that keeps only one G
// of its batch (HalfOfTheVictimsRing); no stealing (IdlePStealsFromABusyP);
// resetspinning without wakep, and a giving-up spinner left counted
// (SchedSpin.*); retake never retaking (RetakesThePOfALongSyscall); sysmon
// never marking a slice over (MarksAGPastItsSlice, PairCannotStarve*);
// sysmon marking a G that has the P to itself (LeavesALoneGAlone).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/syscall.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/export_test.h"
#include "core/runq.h"
#include "core/sched.h"
#include "core/timer.h"
#include "tests/unit/runtime_harness.h"

using namespace mnp;
using namespace mnp_test;

namespace {

// ---- park / ready races ---------------------------------------------------

constexpr int kRaceRounds = 100;

// Spin-waits in these tests give the CPU away: the machine may have fewer
// free CPUs than the test has threads that spin.
inline void relax() { sched_yield(); }

// One G parks kRaceRounds times; each time the readier takes it out of the
// slot while it is certainly still Running (it waits for the readier's flag
// before it calls park) and calls ready() at once.
struct RaceState {
  Parker slot;
  std::atomic<bool> entering{false};
  std::atomic<int> resumed{0};
  std::atomic<int> seen_running{0};
  Counter done;
};
RaceState* race;

void race_parker(void*) {
  for (int i = 0; i < kRaceRounds; i++) {
    race->slot.g.store(getg(), std::memory_order_release);
    while (!race->entering.load(std::memory_order_acquire)) relax();
    race->entering.store(false, std::memory_order_relaxed);
    for (int k = 0; k < 100; k++) cpu_relax();  // the readier is in ready() by now, spinning
    park(kWaitSema);
    race->resumed.fetch_add(1, std::memory_order_relaxed);
  }
  race->done.add();
}

void race_ready_one(bool from_g) {
  G* gp;
  // No yield() here: a G readier and the parker each spin on their own P
  // (the parker is readied into the readier's next, and the idle P's M,
  // woken by that ready, steals it).
  (void)from_g;
  while (!(gp = race->slot.g.exchange(nullptr, std::memory_order_acq_rel))) relax();
  if (gp->status.load(std::memory_order_acquire) == kGRunning) race->seen_running.fetch_add(1);
  race->entering.store(true, std::memory_order_release);
  ready(gp, true);
}

void race_body_thread_readier() {
  race = new RaceState;
  go(race_parker);
  std::thread readier([] {
    for (int i = 0; i < kRaceRounds; i++) race_ready_one(false);
  });
  // The main G keeps its P busy and takes the parker from the global queue
  // itself (an M that slept each round would make every round cost a
  // kernel wake-up: slow on a loaded machine).
  while (race->done.n.load() < 1)
    if (!yield()) relax();
  readier.join();
  RT_CHECK_EQ(race->resumed.load(), kRaceRounds);
  RT_CHECK_EQ(race->seen_running.load(), kRaceRounds);  // every ready() met a G still Running
}

void race_body_g_readier() {
  race = new RaceState;
  go([](void*) {
    for (int i = 0; i < kRaceRounds; i++) race_ready_one(true);
    race->done.add();
  });
  go(race_parker);
  race->done.wait_for(2);
  RT_CHECK_EQ(race->resumed.load(), kRaceRounds);
  RT_CHECK_EQ(race->seen_running.load(), kRaceRounds);
}

// kParkers Gs park kRounds times each, publishing themselves just before
// they park; two plain threads and two Gs sweep the slots and ready
// whatever they take out, racing each other and the parkers' way into park.
constexpr int kParkers = 16, kRounds = 300;
struct ManyState {
  Parker slots[kParkers];
  std::atomic<int> rounds[kParkers] = {};
  std::atomic<int> readied{0};
  std::atomic<int> finished{0};
  Counter done;
};
ManyState* many;

void many_parker(void* a) {
  auto i = reinterpret_cast<intptr_t>(a);
  for (int r = 0; r < kRounds; r++) {
    many->slots[i].park_here();
    many->rounds[i].fetch_add(1, std::memory_order_relaxed);
  }
  many->finished.fetch_add(1);
  many->done.add();
}

void many_sweep(bool from_g) {
  while (many->finished.load() < kParkers) {
    for (auto& s : many->slots)
      if (s.unpark(from_g)) many->readied.fetch_add(1, std::memory_order_relaxed);
    if (from_g) yield();
    else std::this_thread::yield();
  }
}

void many_body() {
  many = new ManyState;
  for (intptr_t i = 0; i < kParkers; i++) go(many_parker, reinterpret_cast<void*>(i));
  std::thread t1([] { many_sweep(false); }), t2([] { many_sweep(false); });
  for (int k = 0; k < 2; k++)
    go([](void*) {
      many_sweep(true);
      many->done.add();
    });
  many->done.wait_for(kParkers + 2);
  t1.join();
  t2.join();
  for (auto& r : many->rounds) RT_CHECK_EQ(r.load(), kRounds);
  RT_CHECK_EQ(many->readied.load(), kParkers * kRounds);  // one ready per park, none lost, none twice
}

}  // namespace

TEST(SchedPark, ReadyWhileParkCommitsFromThread) {
  EXPECT_IN_RUNTIME(1, false, race_body_thread_readier);
  EXPECT_IN_RUNTIME(2, false, race_body_thread_readier);
}
TEST(SchedPark, ReadyWhileParkCommitsFromG) { EXPECT_IN_RUNTIME(2, false, race_body_g_readier); }
TEST(SchedPark, ManyReadiers) {
  EXPECT_IN_RUNTIME(1, false, many_body);
  EXPECT_IN_RUNTIME(2, false, many_body);
}

// ---- next: inheriting the time slice ----------------------------------------

namespace {

// A and B hand the P to each other: A publishes itself, readies B, parks;
// B, resumed, checks, publishes itself, readies A, parks. `next` says where
// the readied G goes (true: the P's next, false: the ring's tail).
struct Pair {
  Parker a, b;
  std::atomic<bool> quit{false};
  bool next = true;
  uint32_t tick0 = 0;
  std::atomic<int> tick_moved{0};  // resumes that saw schedtick move
  std::atomic<int64_t> trips{0};
  int64_t max_trips = 0;              // A stops after these many round trips...
  std::atomic<bool>* stop = nullptr;  // ... or once *stop is set
  int64_t deadline = kNever;          // ... or at this time (then a starvation)
  Parker* to_ring = nullptr;          // A readies it into the ring's tail at trip 10
  Counter done;
};
Pair* pair_;

void pair_note_tick() {
  if (my_p()->schedtick != pair_->tick0) pair_->tick_moved.fetch_add(1, std::memory_order_relaxed);
}

void pair_b(void*) {
  pair_->b.park_here();
  while (!pair_->quit.load(std::memory_order_acquire)) {
    pair_note_tick();
    pair_->b.g.store(getg(), std::memory_order_release);
    RT_CHECK(pair_->a.unpark(pair_->next));  // A published itself before it readied B
    park(kWaitSema);
  }
  pair_->done.add();
}

void pair_a(void*) {
  while (!pair_->b.parked()) yield();
  pair_->tick0 = my_p()->schedtick;
  for (;;) {
    int64_t t = pair_->trips.load(std::memory_order_relaxed);
    bool stop = (pair_->max_trips && t >= pair_->max_trips) || (pair_->stop && pair_->stop->load()) ||
                (pair_->deadline != kNever && nanotime() > pair_->deadline);
    if (stop) {
      pair_->quit.store(true, std::memory_order_release);
      while (!pair_->b.unpark(true)) cpu_relax();
      break;
    }
    if (pair_->to_ring && t == 10) RT_CHECK(pair_->to_ring->unpark(false));
    pair_->a.g.store(getg(), std::memory_order_release);
    RT_CHECK(pair_->b.unpark(pair_->next));
    park(kWaitSema);
    pair_note_tick();
    pair_->trips.store(t + 1, std::memory_order_relaxed);
    while (!pair_->b.parked()) cpu_relax();  // B published itself before it readied us
  }
  pair_->done.add();
}

void start_pair() {
  go(pair_b);
  go(pair_a);
}

void inherit_body() {
  pair_ = new Pair;
  pair_->max_trips = 1000;
  start_pair();
  pair_->done.wait_for(2);
  RT_CHECK_EQ(pair_->trips.load(), 1000);
  RT_CHECK_EQ(pair_->tick_moved.load(), 0);  // every hand-off through next ran on in the same slice

  // The same pair through the ring: every switch starts a slice.
  uint32_t t0 = my_p()->schedtick;
  pair_ = new Pair;
  pair_->max_trips = 1000;
  pair_->next = false;
  start_pair();
  pair_->done.wait_for(2);
  RT_CHECK_EQ(pair_->tick_moved.load(), 2 * 1000);
  RT_CHECK_GE(my_p()->schedtick - t0, 2 * 1000);
}

// A ping-pong pair at 1 P and a G queued in the ring behind it (A readies
// it there during the pair's 10th trip): only the end of the pair's shared
// slice (sysmon, kPreemptNs) lets it run.
std::atomic<bool> ring_g_ran{false};
Parker ring_g;
void starve_ring_body() {
  pair_ = new Pair;
  pair_->stop = &ring_g_ran;
  pair_->deadline = nanotime() + 5'000'000'000;  // a starvation, not a hang
  pair_->to_ring = &ring_g;
  go([](void*) {
    ring_g.park_here();
    ring_g_ran.store(true);
  });
  start_pair();
  pair_->done.wait_for(2);
  RT_CHECK(ring_g_ran.load());
  RT_CHECK(nanotime() < pair_->deadline);
}

// The same pair and a G asleep on a 20 ms timer of the P: with the P never
// passing through find_runnable, only the park commits run its timers (the
// G, readied into next, then waits in the ring for the slice's end).
std::atomic<bool> timer_g_woke{false};
void starve_timer_body() {
  pair_ = new Pair;
  pair_->stop = &timer_g_woke;
  pair_->deadline = nanotime() + 5'000'000'000;
  go([](void*) {
    Timer t;
    t.when = nanotime() + 20'000'000;
    t.g = getg();
    timer_add(&t);
    park(kWaitSleep);
    timer_g_woke.store(true);
  });
  start_pair();
  pair_->done.wait_for(2);
  RT_CHECK(timer_g_woke.load());
  RT_CHECK(nanotime() < pair_->deadline);
}

}  // namespace

TEST(SchedNext, HandoffInheritsTheSlice) {
  EXPECT_IN_RUNTIME(1, false, inherit_body);  // no sysmon: nobody ends the slice
}
TEST(SchedNext, PairCannotStarveRingG) { EXPECT_IN_RUNTIME(1, true, starve_ring_body); }
TEST(SchedNext, PairCannotStarveTimer) { EXPECT_IN_RUNTIME(1, true, starve_timer_body); }

// ---- stealing ----------------------------------------------------------------

namespace {
struct Thief {
  M m;
  P own, victim;
  G gs[64];
  Thief() { m.p = &own; }
};
}  // namespace

TEST(SchedSteal, HalfOfTheVictimsRing) {
  auto* t = new Thief;
  for (int i = 0; i < 10; i++) ASSERT_TRUE(runq_push_tail(&t->victim.runq, &t->gs[i]));
  t->victim.runq.next.store(&t->gs[20]);
  EXPECT_EQ(test::steal_from(&t->m, &t->victim, true), &t->gs[0]);
  EXPECT_EQ(t->own.runq.size(), 4u) << "5 taken: one to run, 4 onto the thief's ring";
  EXPECT_EQ(t->victim.runq.size(), 5u);
  EXPECT_EQ(t->victim.runq.next.load(), &t->gs[20]) << "next stays while the ring has Gs";
  bool inherit;
  for (int i = 1; i < 5; i++) EXPECT_EQ(runq_pop(&t->own.runq, &inherit), &t->gs[i]);
  EXPECT_EQ(t->own.runq.next.load(), nullptr);
  delete t;
}

TEST(SchedSteal, NextOnlyWhenAskedAndAfterTheGrace) {
  auto* t = new Thief;
  t->victim.runq.next.store(&t->gs[7]);
  EXPECT_EQ(test::steal_from(&t->m, &t->victim, false), nullptr);
  EXPECT_EQ(t->victim.runq.next.load(), &t->gs[7]);
  int64_t t0 = nanotime();
  EXPECT_EQ(test::steal_from(&t->m, &t->victim, true), &t->gs[7]);
  // Taken only after it sat still for the grace period (a lower bound the
  // code guarantees: no timing assumption).
  EXPECT_GE(nanotime() - t0, test::steal_next_delay_ns());
  EXPECT_EQ(t->victim.runq.next.load(), nullptr);
  EXPECT_TRUE(t->own.runq.empty());
  delete t;
}

namespace {
// At 2 Ps one G keeps its P busy without a scheduling point while the Gs it
// created sit on that P's queue: the other P's M must steal them.
constexpr int kStealGs = 64;
std::atomic<int> steal_ran{0}, steal_elsewhere{0};
M* busy_m;
Counter steal_done;
void steal_body() {
  go([](void*) {
    busy_m = my_m();
    for (int i = 0; i < kStealGs; i++)
      go([](void*) {
        if (my_m() != busy_m) steal_elsewhere.fetch_add(1);
        steal_ran.fetch_add(1);
      });
    int64_t deadline = nanotime() + 5'000'000'000;
    while (steal_ran.load() < kStealGs && nanotime() < deadline) relax();  // no scheduling point
    RT_CHECK_EQ(steal_ran.load(), kStealGs);
    RT_CHECK(my_m() == busy_m);  // never left its M, so all of them ran elsewhere
    steal_done.add();
  });
  steal_done.wait_for(1);
  RT_CHECK_EQ(steal_elsewhere.load(), kStealGs);
}
}  // namespace

TEST(SchedSteal, IdlePStealsFromABusyP) { EXPECT_IN_RUNTIME(2, false, steal_body); }

// ---- spinning Ms --------------------------------------------------------------

namespace {
// At 2 Ps, before any other M exists: M0 pretends to be the last spinning
// M and to have found work. resetspinning must start an M for the idle P
// (there is no spinning M left); the same with another M still spinning
// must start none.
void spin_wake_body() {
  M* m0 = my_m();
  RT_CHECK_EQ(sched.mcount.load(), 1);
  RT_CHECK_EQ(sched.npidle.load(), 1);
  RT_CHECK_EQ(sched.nmspinning.load(), 0);

  m0->spinning = true;
  sched.nmspinning.fetch_add(1);
  sched.nmspinning.fetch_add(1);  // someone else still spins
  test::resetspinning(m0);
  RT_CHECK(!m0->spinning);
  RT_CHECK_EQ(sched.mcount.load(), 1);  // a spinner exists: nobody woken
  sched.nmspinning.fetch_sub(1);

  m0->spinning = true;
  sched.nmspinning.fetch_add(1);
  test::resetspinning(m0);
  RT_CHECK_EQ(sched.mcount.load(), 2);  // the last spinner found work: one more M
  // The new M spins, finds nothing and sleeps: the count returns to 0.
  int64_t deadline = nanotime() + 5'000'000'000;
  while ((sched.nmspinning.load() != 0 || sched.npidle.load() != 1) && nanotime() < deadline) yield();
  RT_CHECK_EQ(sched.nmspinning.load(), 0);
  RT_CHECK_EQ(sched.npidle.load(), 1);
}

// Bursts of short Gs at 2 and 4 Ps: afterwards no M counts as spinning.
void spin_burst_body() {
  static Counter done;
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 50; i++)
      go([](void*) {
        for (int k = 0; k < 1000; k++) cpu_relax();
        done.add();
      });
    done.wait_for(50 * (round + 1));
  }
  int64_t deadline = nanotime() + 5'000'000'000;
  auto others_idle = [] { return sched.npidle.load() == static_cast<int32_t>(sched.nprocs) - 1; };
  while ((sched.nmspinning.load() != 0 || !others_idle()) && nanotime() < deadline) yield();
  RT_CHECK_EQ(sched.nmspinning.load(), 0);
  RT_CHECK(others_idle());
}
}  // namespace

TEST(SchedSpin, SpinnerThatFindsWorkWakesAnother) { EXPECT_IN_RUNTIME(2, false, spin_wake_body); }
TEST(SchedSpin, NmspinningReturnsToZero) {
  EXPECT_IN_RUNTIME(2, false, spin_burst_body);
  EXPECT_IN_RUNTIME(4, false, spin_burst_body);
}

// ---- sysmon ---------------------------------------------------------------------

namespace {
// At 1 P: A blocks in read(2) on a pipe inside entersyscall/exitsyscall
// while B, queued behind it on the same P, is the only one who writes to
// the pipe. B runs only if sysmon retakes the P and gives it to another M.
int retake_pipe[2];
std::atomic<M*> a_m{nullptr}, b_m{nullptr};
void retake_body() {
  static Counter done;
  RT_CHECK_EQ(pipe(retake_pipe), 0);
  go([](void*) {  // B
    b_m = my_m();
    char c = 'x';
    RT_CHECK_EQ(write(retake_pipe[1], &c, 1), 1);
    done.add();
  });
  go([](void*) {  // A, the P's next: runs first
    a_m = my_m();
    char c;
    entersyscall();
    long n = syscall(SYS_read, retake_pipe[0], &c, 1);
    exitsyscall();
    RT_CHECK_EQ(n, 1);
    RT_CHECK(my_p() != nullptr);
    done.add();
  });
  done.wait_for(2);
  RT_CHECK(a_m.load() != b_m.load());  // B ran on another M while A's was in the kernel
}

// At 1 P: a G that makes no scheduling point while another G waits for the
// P gets G::preempt set once it has run a whole slice, so its next park or
// yield ends the slice.
void preempt_mark_body() {
  static Counter done;
  go([](void*) {
    G* self = getg();
    go([](void*) { done.add(); });  // queued on this P behind us: work for the P
    int64_t deadline = nanotime() + 5'000'000'000;
    while (self->preempt.load(std::memory_order_relaxed) == kPreemptNone && nanotime() < deadline) cpu_relax();
    RT_CHECK(self->preempt.load() != kPreemptNone);
    done.add();
  });
  done.wait_for(2);
}

// At 1 P: a G alone with its P is not marked, however long it runs: nothing
// else wants the P, and a signal would only cost it a handler run (and a
// traced program a stop).
void lone_g_body() {
  static Counter done;
  go([](void*) {
    G* self = getg();
    int64_t until = nanotime() + 60'000'000;  // six slices
    while (nanotime() < until) cpu_relax();
    RT_CHECK(self->preempt.load() == kPreemptNone);
    done.add();
  });
  done.wait_for(1);
}
}  // namespace

TEST(Sysmon, RetakesThePOfALongSyscall) { EXPECT_IN_RUNTIME(1, true, retake_body); }
TEST(Sysmon, MarksAGPastItsSlice) { EXPECT_IN_RUNTIME(1, true, preempt_mark_body); }
TEST(Sysmon, LeavesALoneGAlone) { EXPECT_IN_RUNTIME(1, true, lone_g_body); }

// ---- status changes ----------------------------------------------------------

TEST(SchedStatus, BadTransitionNamesTheStates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  G g;
  g.goid = 7;
  initgstatus(&g, kGRunning);
  EXPECT_DEATH(casgstatus(&g, kGWaiting, kGRunnable), "casgstatus: G 7 from waiting to runnable, but it is running");
  casgstatus(&g, kGRunning, kGSyscall);
  EXPECT_EQ(g.status.load(), kGSyscall);
  // Between Running and Syscall the check is a load and a store (sched.h).
  EXPECT_DEATH(casgstatus(&g, kGRunning, kGSyscall), "casgstatus: G 7 from running to syscall, but it is syscall");
  casgstatus(&g, kGSyscall, kGRunning);
  EXPECT_EQ(g.status.load(), kGRunning);
}
