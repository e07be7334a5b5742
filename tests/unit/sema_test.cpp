// tests/unit/sema_test.cpp — the sema table's futex contract, exercised
// through its kernel path (callers that are not Gs) and its G path (Gs of a
// runtime started for the test, runtime_harness.h, at 1 and 2 Ps): a waiter
// sleeps only while the word holds the expected value (EAGAIN otherwise), a
// deadline gives ETIMEDOUT, sema_wake reports how many it woke and wakes no
// more than asked, and requeue moves waiters to another word. Regression
// guard for the bucket's kernel-waiter count: a wake that finds no G waiter
// must still reach threads sleeping in the kernel. Nothing sleeps for a
// guessed time to let waiters arrive: kernel sleepers are found in /proc
// (blocked in futex(2) on the word), G waiters counted with sema_count.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/base.h"
#include "core/sema.h"
#include "tests/unit/runtime_harness.h"

using namespace mnp;

namespace {
// True when kernel thread tid is blocked in futex(2) on addr: /proc's view
// of its system call ("202 0x<addr> ..."; the number is SYS_futex).
bool in_futex_on(pid_t tid, const void* addr) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  FILE* f = fopen(path, "r");
  if (!f) return false;
  bool yes = false;
  if (fgets(buf, sizeof buf, f)) {
    char want[64];
    snprintf(want, sizeof want, "%d 0x%lx ", SYS_futex, reinterpret_cast<unsigned long>(addr));
    yes = strncmp(buf, want, strlen(want)) == 0;
  }
  fclose(f);
  return yes;
}

// Waits until `attempts` sema_wait calls have begun and each thread of
// tids is asleep in the kernel on addr. A thread counts its attempt before
// it calls sema_wait, so once the count is reached the futex wait /proc
// shows is the latest one (a woken thread that has not left the kernel
// yet does not pass for a sleeper). No sleeping for a guessed time: on a
// loaded machine a thread may take long to get there.
void wait_until_sleeping(const std::vector<pid_t>& tids, std::atomic<int>& began, int attempts, const void* addr) {
  for (;;) {
    bool all = began.load() >= attempts;
    for (pid_t t : tids) all = all && in_futex_on(t, addr);
    if (all) return;
    std::this_thread::yield();
  }
}

struct Tids {
  std::mutex mu;
  std::vector<pid_t> v;
  void add() {
    std::lock_guard<std::mutex> lk(mu);
    v.push_back(static_cast<pid_t>(syscall(SYS_gettid)));
  }
  std::vector<pid_t> get(size_t n) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lk(mu);
        if (v.size() >= n) return v;
      }
      std::this_thread::yield();
    }
  }
};
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
  std::atomic<int> began{0}, woke{0};
  Tids tids;
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; i++)
    ts.emplace_back([&] {
      tids.add();
      for (;;) {
        began++;
        if (w.load() != 0) break;
        sema_wait(&w, 0, kNever);
        if (w.load() != 0) break;
      }
      woke++;
    });
  wait_until_sleeping(tids.get(4), began, 4, &w);
  EXPECT_EQ(sema_wake(&w, 1), 1);
  // The woken thread re-checks, sees w == 0 and sleeps again: nobody passed.
  wait_until_sleeping(tids.get(4), began, 5, &w);
  EXPECT_EQ(woke.load(), 0);
  w.store(1);
  EXPECT_EQ(sema_wake(&w, 100), 4);
  for (auto& t : ts) t.join();
  EXPECT_EQ(woke.load(), 4);
  EXPECT_EQ(sema_wake(&w, 100), 0);
}

TEST(Sema, RequeueMovesWaitersToAnotherWord) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<int> began{0}, done{0};
  Tids tids;
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; i++)
    ts.emplace_back([&] {
      tids.add();
      began++;
      sema_wait(&a, 0, kNever);
      done++;
    });
  wait_until_sleeping(tids.get(3), began, 3, &a);
  uint32_t wrong = 7;
  EXPECT_EQ(sema_requeue(&a, &b, 1, 10, &wrong, true), -EAGAIN);
  uint32_t right = 0;
  EXPECT_EQ(sema_requeue(&a, &b, 1, 10, &right, true), 3) << "one woken + two moved";
  while (done.load() < 1) std::this_thread::yield();
  EXPECT_EQ(sema_wake(&a, 10), 0) << "nobody is left on a";
  EXPECT_EQ(done.load(), 1);
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

// Gs contend for a word lock (the sema table's mutex protocol: 0 free, 1
// held, 2 held with waiters): an unlock that finds 2 wakes one waiter, and
// at 2 Ps the waiter is often still on its way into park() then (it is on
// the bucket's list, its park not yet committed): the wake claims it and its
// commit fails. A lost wake-up hangs the body; a broken claim lets two Gs in
// at once, which the plain counter and the holder check show.
std::atomic<uint32_t> glock{0};
std::atomic<int> gholders{0};
uint64_t gcount = 0;  // guarded by glock
bool goverlap = false;
constexpr int kLockers = 4, kLockRounds = 20000;
int64_t gspin_ns = 0;  // word_lock_slow's spin in g_lock_handoffs
void g_lock_handoffs() {
  gcount = 0;
  for (int i = 0; i < kLockers; i++)
    go([](void*) {
      for (int r = 0; r < kLockRounds; r++) {
        if (!word_trylock(&glock)) RT_CHECK_EQ(word_lock_slow(&glock, gspin_ns, kNever), 0);
        if (gholders.fetch_add(1) != 0) goverlap = true;
        gcount++;
        gholders.fetch_sub(1);
        word_unlock(&glock);
      }
      gdone.add();
    });
  gdone.wait_for(kLockers);
  RT_CHECK(!goverlap);
  RT_CHECK_EQ(gcount, static_cast<uint64_t>(kLockers) * kLockRounds);
  RT_CHECK_EQ(sema_count(&glock), 0);
}
}  // namespace

TEST(SemaG, LockHandoffsLoseNoWakeUp) {
  EXPECT_IN_RUNTIME(1, false, g_lock_handoffs);
  EXPECT_IN_RUNTIME(2, false, g_lock_handoffs);
}

// The same with the spin a contended mutex gets (3 us): a spinner takes the
// word as 1 while others may wait on it, which only works because a woken
// waiter takes it back as 2.
TEST(SemaG, LockHandoffsWithSpinLoseNoWakeUp) {
  gspin_ns = 3000;
  EXPECT_IN_RUNTIME(2, false, g_lock_handoffs);
  gspin_ns = 0;
}

namespace {
// A held word and a deadline already past, with a spin asked for: ETIMEDOUT,
// the word marked as waited for (2), no waiter left in the table.
void g_lock_deadline_past() {
  std::atomic<uint32_t> w{1};
  RT_CHECK_EQ(word_lock_slow(&w, 3000, nanotime() - 1), ETIMEDOUT);
  RT_CHECK_EQ(w.load(), 2u);
  RT_CHECK_EQ(sema_count(&w), 0);
}
}  // namespace

TEST(SemaG, LockSpinEndsAtDeadline) { EXPECT_IN_RUNTIME(2, false, g_lock_deadline_past); }
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
