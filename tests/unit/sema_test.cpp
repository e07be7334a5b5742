// tests/unit/sema_test.cpp — the sema table's futex contract, exercised
// through its kernel path (callers that are not Gs) and its G path (Gs of a
// runtime started for the test, runtime_harness.h, at 1 and 2 Ps): a waiter
// sleeps only while the word holds the expected value (EAGAIN otherwise), a
// deadline gives ETIMEDOUT, sema_wake reports how many it woke and wakes no
// more than asked, and requeue moves waiters to another word. Regression
// guard for the bucket's kernel-waiter count: a wake that finds no G waiter
// must still reach threads sleeping in the kernel. On the G path the
// parked waiters are counted exactly (sema_count), so nothing sleeps to
// let them arrive.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "core/base.h"
#include "core/sema.h"
#include "tests/unit/runtime_harness.h"

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

// ---- the G path -------------------------------------------------------------

namespace {
using mnp_test::Counter;
using mnp_test::go;

void until_parked(const void* addr, int n) {
  while (sema_count(addr) < n) yield();
}

void g_mismatch_and_timeout() {
  static std::atomic<uint32_t> w{5};
  RT_CHECK_EQ(sema_wait(&w, 4, kNever), EAGAIN);
  int64_t t0 = nanotime();
  RT_CHECK_EQ(sema_wait(&w, 5, t0 + 20 * 1000 * 1000), ETIMEDOUT);  // a timer of the P readies it
  RT_CHECK_GE(nanotime() - t0, 20 * 1000 * 1000);
  RT_CHECK_EQ(sema_count(&w), 0);  // the timed-out waiter left the bucket
}

std::atomic<uint32_t> gw{0};
std::atomic<int> gwoke{0};
Counter gdone;
void g_wake_counts() {
  for (int i = 0; i < 4; i++)
    go([](void*) {
      while (gw.load() == 0) sema_wait(&gw, 0, kNever);
      gwoke++;
      gdone.add();
    });
  until_parked(&gw, 4);
  RT_CHECK_EQ(sema_wake(&gw, 1), 1);
  until_parked(&gw, 4);  // the woken G saw 0 and waits again: nobody passed
  RT_CHECK_EQ(gwoke.load(), 0);
  gw.store(1);
  RT_CHECK_EQ(sema_wake(&gw, 100), 4);
  gdone.wait_for(4);
  RT_CHECK_EQ(gwoke.load(), 4);
  RT_CHECK_EQ(sema_wake(&gw, 100), 0);
}

std::atomic<uint32_t> ga{0}, gb{0};
void g_requeue() {
  for (int i = 0; i < 3; i++)
    go([](void*) {
      RT_CHECK_EQ(sema_wait(&ga, 0, kNever), 0);
      gdone.add();
    });
  until_parked(&ga, 3);
  uint32_t wrong = 7;
  RT_CHECK_EQ(sema_requeue(&ga, &gb, 1, 10, &wrong, true), -EAGAIN);
  uint32_t right = 0;
  RT_CHECK_EQ(sema_requeue(&ga, &gb, 1, 10, &right, true), 3);  // one woken + two moved
  gdone.wait_for(1);
  RT_CHECK_EQ(sema_count(&ga), 0);
  RT_CHECK_EQ(sema_count(&gb), 2);
  RT_CHECK_EQ(sema_wake(&ga, 10), 0);
  RT_CHECK_EQ(sema_wake(&gb, 10), 2);
  gdone.wait_for(3);
}

// A G and a plain thread wait on one word: one sema_wake reaches both
// (the G through the table, the thread through the kernel futex).
std::atomic<uint32_t> gm{0};
void g_and_kernel_waiter() {
  std::atomic<bool> thread_in{false};
  static std::atomic<bool>* tin = &thread_in;
  go([](void*) {
    while (gm.load() == 0) sema_wait(&gm, 0, kNever);
    gdone.add();
  });
  std::thread t([] {
    tin->store(true);
    while (gm.load() == 0) sema_wait(&gm, 0, kNever);
  });
  until_parked(&gm, 1);
  while (!thread_in.load()) yield();
  gm.store(1);
  sema_wake(&gm, 100);
  gdone.wait_for(1);
  t.join();  // blocks this M for a moment: the thread was woken already
}
}  // namespace

TEST(SemaG, ValueMismatchAndTimeout) {
  EXPECT_IN_RUNTIME(1, false, g_mismatch_and_timeout);
  EXPECT_IN_RUNTIME(2, false, g_mismatch_and_timeout);
}
TEST(SemaG, WakeCountsAndWakesNoMoreThanAsked) {
  EXPECT_IN_RUNTIME(1, false, g_wake_counts);
  EXPECT_IN_RUNTIME(2, false, g_wake_counts);
}
TEST(SemaG, RequeueMovesWaitersToAnotherWord) {
  EXPECT_IN_RUNTIME(1, false, g_requeue);
  EXPECT_IN_RUNTIME(2, false, g_requeue);
}
TEST(SemaG, OneWakeReachesGsAndKernelWaiters) {
  EXPECT_IN_RUNTIME(1, false, g_and_kernel_waiter);
  EXPECT_IN_RUNTIME(2, false, g_and_kernel_waiter);
}
