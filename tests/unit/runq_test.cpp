// tests/unit/runq_test.cpp — the per-P run queue: order, overflow, stealing
// half, and a concurrent stress where an owner pushes and pops while thieves
// steal: every item must come out exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/runq.h"
#include "core/sched.h"

using namespace mnp;

namespace {
std::vector<G> make_gs(size_t n) { return std::vector<G>(n); }
}  // namespace

TEST(RunQ, FifoOrderAndNextFirst) {
  RunQ q;
  auto gs = make_gs(10);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(runq_push_tail(&q, &gs[i]));
  G* extra = new G();
  q.next.store(extra);
  bool inherit = false;
  EXPECT_EQ(runq_pop(&q, &inherit), extra);
  EXPECT_TRUE(inherit);
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(runq_pop(&q, &inherit), &gs[i]);
    EXPECT_FALSE(inherit);
  }
  EXPECT_EQ(runq_pop(&q, &inherit), nullptr);
  EXPECT_TRUE(q.empty());
  delete extra;
}

TEST(RunQ, FullRingRefusesAndTakeHalfMovesHalf) {
  RunQ q;
  auto gs = make_gs(kRunqSize + 1);
  for (uint32_t i = 0; i < kRunqSize; i++) ASSERT_TRUE(runq_push_tail(&q, &gs[i]));
  EXPECT_FALSE(runq_push_tail(&q, &gs[kRunqSize]));
  G* batch[kRunqSize / 2];
  ASSERT_EQ(runq_take_half(&q, batch), kRunqSize / 2);
  for (uint32_t i = 0; i < kRunqSize / 2; i++) EXPECT_EQ(batch[i], &gs[i]);  // oldest first
  EXPECT_EQ(q.size(), kRunqSize / 2);
  EXPECT_TRUE(runq_push_tail(&q, &gs[kRunqSize]));
}

TEST(RunQ, StealTakesHalfRoundedUp) {
  RunQ q;
  auto gs = make_gs(7);
  for (auto& g : gs) runq_push_tail(&q, &g);
  G* batch[kRunqSize / 2];
  EXPECT_EQ(runq_grab(&q, batch, false), 4u);
  EXPECT_EQ(batch[0], &gs[0]);
  EXPECT_EQ(q.size(), 3u);
  // An empty ring gives up next only when asked to.
  RunQ q2;
  G n;
  q2.next.store(&n);
  EXPECT_EQ(runq_grab(&q2, batch, false), 0u);
  EXPECT_EQ(runq_grab(&q2, batch, true), 1u);
  EXPECT_EQ(batch[0], &n);
}

// Owner pushes 200k items (popping some itself, overflowing into a local
// "global" list when full) while three thieves steal. Each item must be seen
// exactly once: a lost item means a stale copy was accepted, a duplicate
// means a CAS was skipped.
TEST(RunQ, ConcurrentStealLosesAndDuplicatesNothing) {
  constexpr int kItems = 200000;
  RunQ q;
  std::vector<G> gs(kItems);
  std::vector<std::atomic<int>> seen(kItems);
  for (auto& s : seen) s.store(0);
  auto index = [&](G* g) { return static_cast<size_t>(g - gs.data()); };
  std::atomic<bool> done{false};
  std::atomic<long> taken{0};
  std::vector<std::thread> thieves;
  for (int t = 0; t < 3; t++)
    thieves.emplace_back([&] {
      G* batch[kRunqSize / 2];
      while (!done.load(std::memory_order_acquire) || !q.empty()) {
        uint32_t n = runq_grab(&q, batch, true);
        for (uint32_t i = 0; i < n; i++) seen[index(batch[i])].fetch_add(1);
        taken.fetch_add(n);
      }
    });
  bool inherit;
  for (int i = 0; i < kItems; i++) {
    while (!runq_push_tail(&q, &gs[i])) {
      G* batch[kRunqSize / 2];
      uint32_t n = runq_take_half(&q, batch);
      for (uint32_t k = 0; k < n; k++) seen[index(batch[k])].fetch_add(1);
      taken.fetch_add(n);
    }
    if (i % 3 == 0)
      if (G* g = runq_pop(&q, &inherit)) {
        seen[index(g)].fetch_add(1);
        taken.fetch_add(1);
      }
  }
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  while (G* g = runq_pop(&q, &inherit)) {
    seen[index(g)].fetch_add(1);
    taken.fetch_add(1);
  }
  EXPECT_EQ(taken.load(), kItems);
  int bad = 0;
  for (int i = 0; i < kItems; i++) bad += seen[i].load() != 1;
  EXPECT_EQ(bad, 0);
}
