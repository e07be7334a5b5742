// cxx_sync — the C++20 standard library's synchronization on pthreads (and,
// for semaphores, latch, barrier and atomic wait, libstdc++'s own futex calls).
//
// Covers: std::mutex counter (16 threads x 20,000); std::condition_variable
// bounded queue (4 producers, 4 consumers, 40,000 items, checksum);
// std::shared_mutex readers/writers invariants; std::counting_semaphore used
// as a 3-slot gate (never more than 3 inside); std::latch (16 arrive, main
// waits); std::barrier with a completion function over 100 phases;
// std::atomic<int>::wait/notify_one ping-pong 10,000 times; std::jthread
// whose loop stops on request_stop through its stop_token, plus a
// condition_variable_any wait that a stop request interrupts; std::async
// (launch::async) futures summing ranges; std::call_once whose first
// callable throws (the exception leaves pthread_once by unwinding, and the
// next caller, one of 8 threads waiting at the flag, runs its own callable).
//
// Failure: any wrong count or checksum (printed, exit 1), a semaphore
// overshoot, a barrier completion count off, or a hang (a lost notify).
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <latch>
#include <mutex>
#include <semaphore>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "../mnp_check.h"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL %s\n", what);
    failures++;
  }
}

void test_mutex() {
  std::mutex m;
  long counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; i++)
    ts.emplace_back([&] {
      for (int k = 0; k < 20000; k++) {
        std::lock_guard<std::mutex> g(m);
        counter++;
      }
    });
  for (auto& t : ts) t.join();
  std::printf("mutex: counter=%ld\n", counter);
  check(counter == 16L * 20000, "mutex counter");
}

void test_condvar() {
  std::mutex m;
  std::condition_variable not_empty, not_full;
  std::deque<long> q;
  const long kItems = 40000;
  long consumed = 0;
  unsigned long long checksum = 0;
  std::vector<std::thread> ts;
  for (int p = 0; p < 4; p++)
    ts.emplace_back([&, p] {
      for (long v = p; v < kItems; v += 4) {
        std::unique_lock<std::mutex> l(m);
        not_full.wait(l, [&] { return q.size() < 32; });
        q.push_back(v);
        not_empty.notify_one();
      }
    });
  for (int c = 0; c < 4; c++)
    ts.emplace_back([&] {
      for (;;) {
        std::unique_lock<std::mutex> l(m);
        not_empty.wait(l, [&] { return !q.empty(); });
        long v = q.front();
        q.pop_front();
        not_full.notify_one();
        if (v < 0) return;
        consumed++;
        checksum += (unsigned long long)v * 3 + 1;
      }
    });
  for (int p = 0; p < 4; p++) ts[p].join();
  {
    std::lock_guard<std::mutex> l(m);
    for (int c = 0; c < 4; c++) q.push_back(-1);
  }
  not_empty.notify_all();
  for (int c = 4; c < 8; c++) ts[c].join();
  unsigned long long expect = 0;
  for (long v = 0; v < kItems; v++) expect += (unsigned long long)v * 3 + 1;
  std::printf("condition_variable: consumed=%ld checksum_ok=%d\n", consumed, checksum == expect);
  check(consumed == kItems && checksum == expect, "condvar queue");
}

void test_shared_mutex() {
  std::shared_mutex sm;
  std::atomic<int> readers{0}, writers{0}, violations{0};
  long value = 0;
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; w++)
    ts.emplace_back([&] {
      for (int k = 0; k < 2000; k++) {
        std::unique_lock<std::shared_mutex> l(sm);
        if (writers.fetch_add(1) != 0 || readers.load() != 0) violations++;
        value++;
        writers.fetch_sub(1);
      }
    });
  for (int r = 0; r < 8; r++)
    ts.emplace_back([&] {
      for (int k = 0; k < 4000; k++) {
        std::shared_lock<std::shared_mutex> l(sm);
        readers.fetch_add(1);
        if (writers.load() != 0) violations++;
        readers.fetch_sub(1);
      }
    });
  for (auto& t : ts) t.join();
  bool try_ok;
  {
    std::shared_lock<std::shared_mutex> l(sm);
    bool try_excl = true;
    std::thread([&] {
      try_excl = sm.try_lock();
      if (try_excl) sm.unlock();
    }).join();
    try_ok = !try_excl;
  }
  std::printf("shared_mutex: value=%ld violations=%d try_lock_vs_reader_fails=%d\n", value, violations.load(), try_ok);
  check(value == 8000 && violations.load() == 0 && try_ok, "shared_mutex");
}

void test_semaphore() {
  std::counting_semaphore<3> slots(3);
  std::atomic<int> inside{0}, max_inside{0}, passes{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; i++)
    ts.emplace_back([&] {
      for (int k = 0; k < 500; k++) {
        slots.acquire();
        int n = inside.fetch_add(1) + 1;
        int m = max_inside.load();
        while (n > m && !max_inside.compare_exchange_weak(m, n)) {
        }
        if (k % 50 == 0) std::this_thread::yield();
        passes++;
        inside.fetch_sub(1);
        slots.release();
      }
    });
  for (auto& t : ts) t.join();
  bool try_ok = slots.try_acquire() && slots.try_acquire() && slots.try_acquire() && !slots.try_acquire();
  slots.release(3);
  std::printf("counting_semaphore: passes=%d max_inside_le_3=%d try_acquire_4th_fails=%d\n", passes.load(),
              max_inside.load() <= 3, try_ok);
  check(passes.load() == 6000 && max_inside.load() <= 3 && try_ok, "counting_semaphore");
}

void test_latch() {
  std::latch done(16);
  std::atomic<int> arrived{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; i++)
    ts.emplace_back([&] {
      arrived++;
      done.count_down();
    });
  done.wait();
  int seen = arrived.load();
  for (auto& t : ts) t.join();
  std::printf("latch: arrived_before_release=%d try_wait=%d\n", seen, done.try_wait());
  check(seen == 16 && done.try_wait(), "latch");
}

void test_barrier() {
  const int kThreads = 8, kPhases = 100;
  std::atomic<int> arrivals{0};
  int completions = 0, bad_completions = 0;
  auto on_completion = [&]() noexcept {
    completions++;
    if (arrivals.load() != completions * kThreads) bad_completions++;
  };
  std::barrier sync(kThreads, on_completion);
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; i++)
    ts.emplace_back([&] {
      for (int p = 0; p < kPhases; p++) {
        arrivals++;
        sync.arrive_and_wait();
      }
    });
  for (auto& t : ts) t.join();
  std::printf("barrier: completions=%d bad_completions=%d\n", completions, bad_completions);
  check(completions == kPhases && bad_completions == 0, "barrier");
}

void test_atomic_wait() {
  std::atomic<int> turn{0};
  const int kRounds = 10000;
  long a_count = 0, b_count = 0;
  std::thread b([&] {
    for (int i = 0; i < kRounds; i++) {
      turn.wait(0);  // until A hands over (turn == 1)
      b_count++;
      turn.store(0);
      turn.notify_one();
    }
  });
  for (int i = 0; i < kRounds; i++) {
    turn.store(1);
    turn.notify_one();
    turn.wait(1);
    a_count++;
  }
  b.join();
  std::printf("atomic_wait: a=%ld b=%ld\n", a_count, b_count);
  check(a_count == kRounds && b_count == kRounds, "atomic wait/notify");
}

void test_jthread() {
  std::atomic<long> spins{0};
  std::atomic<bool> running{false};
  bool stopped_cleanly = false;
  {
    std::jthread j([&](std::stop_token st) {
      running = true;
      while (!st.stop_requested()) {
        spins++;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      stopped_cleanly = true;
    });
    while (!running.load() || spins.load() < 3) std::this_thread::yield();
    // destructor: request_stop() + join()
  }
  // A condition_variable_any wait interrupted by a stop request.
  std::mutex m;
  std::condition_variable_any cv;
  bool woke_by_stop = false;
  std::jthread w([&](std::stop_token st) {
    std::unique_lock<std::mutex> l(m);
    bool pred = cv.wait(l, st, [] { return false; });
    woke_by_stop = !pred && st.stop_requested();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  w.request_stop();
  w.join();
  std::printf("jthread: stopped_cleanly=%d spun=%d cv_any_stop=%d\n", stopped_cleanly, spins.load() > 0, woke_by_stop);
  check(stopped_cleanly && woke_by_stop, "jthread");
}

void test_async() {
  std::vector<std::future<long>> fs;
  for (int i = 0; i < 8; i++)
    fs.push_back(std::async(std::launch::async, [i] {
      long s = 0;
      for (long v = i * 100000L; v < (i + 1) * 100000L; v++) s += v % 97;
      return s;
    }));
  long total = 0;
  for (auto& f : fs) total += f.get();
  long expect = 0;
  for (long v = 0; v < 800000; v++) expect += v % 97;
  std::promise<int> p;
  std::future<int> pf = p.get_future();
  std::thread setter([&] { p.set_value(42); });
  int pv = pf.get();
  setter.join();
  std::printf("async: total=%ld expected=%ld promise=%d\n", total, expect, pv);
  check(total == expect && pv == 42, "async");
}

}  // namespace

// The first std::call_once callable throws: the exception reaches the caller
// through pthread_once's frame (under the shim its cleanup resets the flag,
// interpose/once.c), and exactly one of the 8 threads then waiting at the
// flag runs its callable; the others return without running theirs.
void test_call_once() {
  std::once_flag flag;
  std::atomic<int> ran{0};
  std::atomic<bool> thrown_caught{false};
  std::atomic<int> waiting{0};
  std::atomic<bool> inside{false};
  std::thread first([&] {
    try {
      std::call_once(flag, [&] {
        inside = true;
        while (waiting.load() < 8) std::this_thread::yield();  // all 8 wait at the flag, or are about to
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        throw 42;
      });
    } catch (int v) {
      thrown_caught = v == 42;
    }
  });
  while (!inside) std::this_thread::yield();  // the others come to a flag whose callable runs
  std::vector<std::thread> rest;
  for (int i = 0; i < 8; i++)
    rest.emplace_back([&] {
      waiting++;
      std::call_once(flag, [&] { ran++; });
    });
  first.join();
  for (auto& t : rest) t.join();
  check(thrown_caught, "call_once: the exception reached the caller");
  check(ran == 1, "call_once: one callable ran after the throw");
}

int main() {
  mnp_report_shim();
  test_mutex();
  test_condvar();
  test_shared_mutex();
  test_semaphore();
  test_latch();
  test_barrier();
  test_atomic_wait();
  test_jthread();
  test_call_once();
  test_async();
  std::printf("cxx_sync: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
