// bench/bench_util.h — helpers shared by the benchmark programs: wall-clock
// measurement (threads are created inside the benchmark bodies, so real
// time is what matters) and reporting per operation or of a wrong result.
#pragma once

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double ns_since(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// Reports `ops` operations done in `ns` of wall time, measured by the caller
// (Google Benchmark's own clock is not readable from inside the benchmark).
inline void report_per_op(benchmark::State& state, double ns, uint64_t ops) {
  if (ops == 0) return;
  state.SetItemsProcessed(static_cast<int64_t>(ops));
  state.counters["ns_per_op"] = ns / static_cast<double>(ops);
}

inline void skip_with_errno(benchmark::State& state, const char* what, int err) {
  std::string msg = std::string(what) + ": " + strerror(err);
  state.SkipWithError(msg.c_str());
}

// Reports a result that does not add up: `what` expected `want`, saw `got`.
inline void skip_wrong(benchmark::State& state, const char* what, uint64_t got, uint64_t want) {
  std::string msg = std::string(what) + ": got " + std::to_string(got) + ", want " + std::to_string(want);
  state.SkipWithError(msg.c_str());
}

// Makes n threads running fn((i + 1) * 7919) for i < n and joins them, in
// wall time (also given to SetIterationTime); a thread returns null when
// its work succeeded. Returns the ns taken, or -1 with the benchmark
// skipped: a create failed (its error), or a thread did (`what` counts
// those that succeeded).
inline double time_threads(benchmark::State& state, size_t n, void* (*fn)(void*), const char* what) {
  std::vector<pthread_t> ts(n);
  Clock::time_point start = Clock::now();
  size_t made = 0;
  int err = 0;
  for (; made < n; made++)
    if ((err = pthread_create(&ts[made], nullptr, fn, reinterpret_cast<void*>((made + 1) * 7919))) != 0) break;
  size_t bad = 0;
  for (size_t i = 0; i < made; i++) {
    void* r = nullptr;
    pthread_join(ts[i], &r);
    bad += r != nullptr;
  }
  double elapsed = ns_since(start);
  state.SetIterationTime(elapsed / 1e9);
  if (made < n) {
    skip_with_errno(state, "pthread_create", err);
    return -1;
  }
  if (bad) {
    skip_wrong(state, what, n - bad, n);
    return -1;
  }
  return elapsed;
}

// Runs fn(arg) on one helper thread beside the benchmark's own.
struct Helper {
  pthread_t thread;
  bool running = false;

  int start(void* (*fn)(void*), void* arg) {
    int err = pthread_create(&thread, nullptr, fn, arg);
    running = err == 0;
    return err;
  }
  void join() {
    if (running) pthread_join(thread, nullptr);
    running = false;
  }
};

// The computing threads of the *BesideHogs benchmarks: each round 2,000
// steps of a generator, then getppid (a libc system call wrapper the shim
// does not interpose), until `stop`; `rounds` sums the rounds at the end.
struct Hogs {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds{0};
};
inline void* hog_main(void* arg) {
  auto* h = static_cast<Hogs*>(arg);
  uint64_t x = 1, rounds = 0;
  while (!h->stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 2000; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    x += static_cast<uint64_t>(getppid());
    rounds++;
  }
  benchmark::DoNotOptimize(x);
  h->rounds.fetch_add(rounds, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace bench
