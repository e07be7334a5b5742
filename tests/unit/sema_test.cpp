// tests/unit/sema_test.cpp — the sema table's futex contract, exercised
// through its kernel path (callers that are not Gs): a waiter sleeps only
// while the word holds the expected value (EAGAIN otherwise), a deadline
// gives ETIMEDOUT, sema_wake reports how many it woke and wakes no more than
// asked, and requeue moves waiters to another word. Regression guard for the
// bucket's kernel-waiter count: a wake that finds no G waiter must still
// reach threads sleeping in the kernel.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "core/base.h"
#include "core/sema.h"

using namespace mnp;

namespace {
void wait_until_sleeping(std::atomic<int>& entered, int n) {
  while (entered.load() < n) std::this_thread::yield();
  // Give them time to reach the kernel.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
}
}  // namespace

TEST(Sema, ValueMismatchAndTimeout) {
  std::atomic<uint32_t> w{5};
  EXPECT_EQ(sema_wait(&w, 4, kNever), EAGAIN);
  int64_t t0 = nanotime();
  EXPECT_EQ(sema_wait(&w, 5, t0 + 20 * 1000 * 1000), ETIMEDOUT);
  EXPECT_GE(nanotime() - t0, 19 * 1000 * 1000);
}

TEST(Sema, WakeCountsAndWakesNoMoreThanAsked) {
  std::atomic<uint32_t> w{0};
  std::atomic<int> entered{0}, woke{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; i++)
    ts.emplace_back([&] {
      entered++;
      while (w.load() == 0) sema_wait(&w, 0, kNever);
      woke++;
    });
  wait_until_sleeping(entered, 4);
  EXPECT_EQ(sema_wake(&w, 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  // The woken thread re-checks, sees w == 0 and sleeps again: nobody passed.
  EXPECT_EQ(woke.load(), 0);
  w.store(1);
  EXPECT_EQ(sema_wake(&w, 100), 4);
  for (auto& t : ts) t.join();
  EXPECT_EQ(woke.load(), 4);
  EXPECT_EQ(sema_wake(&w, 100), 0);
}

TEST(Sema, RequeueMovesWaitersToAnotherWord) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<int> entered{0}, done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; i++)
    ts.emplace_back([&] {
      entered++;
      sema_wait(&a, 0, kNever);
      done++;
    });
  wait_until_sleeping(entered, 3);
  uint32_t wrong = 7;
  EXPECT_EQ(sema_requeue(&a, &b, 1, 10, &wrong, true), -EAGAIN);
  uint32_t right = 0;
  EXPECT_EQ(sema_requeue(&a, &b, 1, 10, &right, true), 3) << "one woken + two moved";
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(sema_wake(&a, 10), 0) << "nobody is left on a";
  EXPECT_EQ(sema_wake(&b, 10), 2);
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), 3);
}
