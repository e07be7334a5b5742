// tests/unit/timer_test.cpp — the per-P timer heap: timers fire in deadline
// order, exactly once, only when due; a deleted timer never fires; when0
// tracks the earliest deadline; a heap grows past its first allocation.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/sched.h"
#include "core/timer.h"

using namespace mnp;

namespace {
std::vector<int> fired;
G* record(Timer* t) {
  fired.push_back(static_cast<int>(reinterpret_cast<intptr_t>(t->arg)));
  return nullptr;
}

struct OneP {
  P p;
  OneP() {
    sched.allp = &p;
    sched.nprocs = 1;
    fired.clear();
  }
  ~OneP() {
    sched.allp = nullptr;
    sched.nprocs = 0;
  }
};
}  // namespace

TEST(TimerHeap, FiresInDeadlineOrderOnlyWhenDue) {
  OneP one;
  constexpr int kN = 500;  // more than the first heap allocation (64)
  std::vector<Timer> timers(kN);
  std::vector<int> order(kN);
  for (int i = 0; i < kN; i++) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  for (int i : order) {
    timers[i].when = 1000 + i;
    timers[i].fn = record;
    timers[i].arg = reinterpret_cast<void*>(static_cast<intptr_t>(i));
    timer_add(&timers[i]);
  }
  EXPECT_EQ(timers_earliest(), 1000);
  EXPECT_EQ(timers_run(&one.p, 999), 0);
  int n = 0;
  for (int r; (r = timers_run(&one.p, 1000 + kN / 2)) > 0;) n += r;
  EXPECT_EQ(n, kN / 2 + 1);
  ASSERT_EQ(fired.size(), static_cast<size_t>(kN / 2 + 1));
  for (size_t i = 0; i < fired.size(); i++) EXPECT_EQ(fired[i], static_cast<int>(i));
  EXPECT_EQ(timers_earliest(), 1000 + kN / 2 + 1);
  while (timers_run(&one.p, kNever - 1) > 0) {
  }
  EXPECT_EQ(fired.size(), static_cast<size_t>(kN));
  EXPECT_EQ(timers_earliest(), kNever);
  for (auto& t : timers) EXPECT_EQ(t.state.load(), kTimerDone);
}

TEST(TimerHeap, DeletedTimerNeverFiresAndHeapStaysOrdered) {
  OneP one;
  Timer a, b, c;
  a.when = 30, b.when = 10, c.when = 20;
  for (auto* t : {&a, &b, &c}) {
    t->fn = record;
    t->arg = reinterpret_cast<void*>(static_cast<intptr_t>(t->when));
    timer_add(t);
  }
  EXPECT_TRUE(timer_del(&b));  // the earliest: root removal
  EXPECT_EQ(timers_earliest(), 20);
  EXPECT_TRUE(timer_del(&a));
  EXPECT_EQ(timers_run(&one.p, 100), 1);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], 20);
  EXPECT_FALSE(timer_del(&c)) << "a fired timer cannot be cancelled";
  EXPECT_EQ(b.state.load(), kTimerCancelled);
}

// Deletions anywhere in the heap, interleaved with additions and with
// equal deadlines: after each one the earliest deadline is that of the
// timers still pending, and in the end exactly those fire, in order.
TEST(TimerHeap, RandomDeletesKeepOrderAndEarliest) {
  OneP one;
  constexpr int kN = 3000;
  std::vector<Timer> timers(kN);
  std::mt19937 rng(7);
  std::vector<int> pending;
  std::vector<bool> deleted(kN, false);
  auto earliest_pending = [&] {
    int64_t best = kNever;
    for (int i : pending) best = std::min(best, timers[i].when);
    return best;
  };
  for (int i = 0; i < kN; i++) {
    timers[i].when = 1000 + static_cast<int64_t>(rng() % 500);  // many equal deadlines
    timers[i].fn = record;
    timers[i].arg = reinterpret_cast<void*>(static_cast<intptr_t>(i));
    timer_add(&timers[i]);
    pending.push_back(i);
    if (rng() % 3 == 0) {
      size_t k = rng() % pending.size();
      int victim = pending[k];
      pending.erase(pending.begin() + static_cast<long>(k));
      ASSERT_TRUE(timer_del(&timers[victim]));
      deleted[victim] = true;
      ASSERT_EQ(timers_earliest(), earliest_pending()) << "after deleting timer " << victim;
    }
  }
  while (timers_run(&one.p, kNever - 1) > 0) {
  }
  ASSERT_EQ(fired.size(), pending.size());
  for (size_t i = 1; i < fired.size(); i++) ASSERT_LE(timers[fired[i - 1]].when, timers[fired[i]].when);
  for (int f : fired) EXPECT_FALSE(deleted[f]);
  EXPECT_EQ(timers_earliest(), kNever);
}
