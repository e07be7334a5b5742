// bench/bench_thread.cpp — what it costs to make, end and switch threads.
//
// An ordinary pthread program: it links Google Benchmark and threads, never
// the shim, so scripts/bench-compare times this very binary natively and with
// LD_PRELOAD=build/shim/libmnpthread.so.
//
//   BM_CreateJoin              pthread_create + pthread_join of a thread that
//                              returns at once, one thread at a time.
//   BM_CreateJoinStack/KiB     BM_CreateJoin with pthread_attr_setstacksize
//                              (1 MiB as Ruby and the JVM ask, 2 MiB as
//                              Rust's std::thread does).
//   BM_CreateJoinBurst10k      create 10,000 such threads, then join them all.
//   BM_YieldPingPong           two threads hand a turn flag back and forth,
//                              each waiting with
//                              `while (turn != me) sched_yield();`.
//   BM_YieldSwitch/threads:N   N threads all calling sched_yield in a loop.
//
// The work happens on threads the benchmark body creates, so every benchmark
// is timed in real (wall-clock) time: the CPU time of the main thread means
// nothing here. Benchmarks whose iteration is not a single operation also
// report `ns_per_op` — wall time per thread created, per hand-off, per
// sched_yield — and items_per_second; scripts/bench-compare prefers ns_per_op
// to the time per iteration.
//
// Waiting is done only with atomics, sched_yield and pthread_join, so these
// numbers do not depend on how the runtime implements mutexes (bench_sync
// measures those).
//
// Under the shim with MNP_PROCS=1, BM_YieldPingPong and BM_YieldSwitch measure
// the G-to-G switch through the scheduler. The fair native comparison for
// that is a run confined to one CPU (scripts/bench-compare --cpus 0), where
// every sched_yield is a kernel context switch.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using namespace bench;

void* return_arg(void* arg) { return arg; }

// ---------------------------------------------------------------------------
// BM_CreateJoin: one thread at a time. Natively each iteration is a clone,
// a stack from glibc's cache and an exit/futex wake-up; under the shim it is
// a G from the free list, a run-queue push and a park/ready pair.

// One create + join per iteration, with attr (null: the default).
void create_join_loop(benchmark::State& state, const pthread_attr_t* attr) {
  for (auto _ : state) {
    pthread_t t;
    int err = pthread_create(&t, attr, return_arg, &state);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    void* result = nullptr;
    err = pthread_join(t, &result);
    if (err != 0 || result != &state) {
      skip_with_errno(state, "pthread_join", err != 0 ? err : EINVAL);
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_CreateJoin(benchmark::State& state) { create_join_loop(state, nullptr); }
BENCHMARK(BM_CreateJoin)->UseRealTime();

// BM_CreateJoinStack: the same with a stack size that is not the default
// (glibc caches such stacks too, up to 40 MiB of them).
void BM_CreateJoinStack(benchmark::State& state) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int err = pthread_attr_setstacksize(&attr, static_cast<size_t>(state.range(0)) * 1024);
  if (err != 0) skip_with_errno(state, "pthread_attr_setstacksize", err);
  else create_join_loop(state, &attr);
  pthread_attr_destroy(&attr);
}
BENCHMARK(BM_CreateJoinStack)->Arg(1024)->Arg(2048)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_CreateJoinBurst10k: 10,000 creates back to back, then 10,000 joins.
// Early threads may well have finished before the last is created; what is
// measured is the throughput of creation and reaping, per thread.

constexpr int kBurst = 10000;

void BM_CreateJoinBurst10k(benchmark::State& state) {
  std::vector<pthread_t> threads(kBurst);
  uint64_t made = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    int n = 0;
    int err = 0;
    for (; n < kBurst; n++) {
      err = pthread_create(&threads[n], nullptr, return_arg, nullptr);
      if (err != 0) break;
    }
    for (int i = 0; i < n; i++) pthread_join(threads[i], nullptr);
    made += static_cast<uint64_t>(n);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
  }
  double ns = ns_since(start);
  if (!state.error_occurred()) report_per_op(state, ns, made);
}
BENCHMARK(BM_CreateJoinBurst10k)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// Helpers that run beside the benchmark's own thread until told to stop.
// Each helper's fields sit on their own cache line so that one helper's
// progress counter does not slow the others down.

struct alignas(64) HelperSlot {
  pthread_t thread;
  // Written only by the helper (relaxed: it is a progress count, read by the
  // benchmark thread only to sum yields, never to order other memory).
  std::atomic<uint64_t> yields{0};
};

struct HelperCrew {
  std::atomic<int> started{0};    // helpers that have begun running
  std::atomic<bool> stop{false};  // set by the benchmark thread when done
  std::vector<HelperSlot> slots;
  size_t created = 0;  // slots[0, created) hold a running thread

  explicit HelperCrew(int n) : slots(static_cast<size_t>(n)) {}

  // Creates every helper running fn(crew); returns 0, or the pthread_create
  // error once the helpers already made have been stopped and joined.
  int start(void* (*fn)(void*)) {
    for (; created < slots.size(); created++) {
      int err = pthread_create(&slots[created].thread, nullptr, fn, this);
      if (err != 0) {
        finish();
        return err;
      }
    }
    // Wait with yields, the same way the helpers wait: nothing here may block
    // in the kernel.
    while (started.load(std::memory_order_acquire) < static_cast<int>(created)) sched_yield();
    return 0;
  }

  // Slot of the calling helper: helpers claim slots in the order they start.
  HelperSlot* claim_slot() {
    int i = claimed.fetch_add(1, std::memory_order_relaxed);
    started.fetch_add(1, std::memory_order_release);
    return &slots[static_cast<size_t>(i)];
  }

  uint64_t helper_yields() const {
    uint64_t sum = 0;
    for (const HelperSlot& s : slots) sum += s.yields.load(std::memory_order_relaxed);
    return sum;
  }

  void finish() {
    stop.store(true, std::memory_order_release);
    for (size_t i = 0; i < created; i++) pthread_join(slots[i].thread, nullptr);
    created = 0;
  }

 private:
  std::atomic<int> claimed{0};
};

// ---------------------------------------------------------------------------
// BM_YieldPingPong: the benchmark thread (player 0) and one helper (player 1)
// alternate strictly. One iteration is one round trip, i.e. two hand-offs;
// ns_per_op is per hand-off. The turn word is the only shared state: a player
// owns everything between seeing turn == me and storing the other's number
// (acquire/release on turn).

constexpr int kStopTurn = -1;
std::atomic<int> g_turn{0};

void* pong(void* arg) {
  auto* crew = static_cast<HelperCrew*>(arg);
  crew->claim_slot();
  for (;;) {
    int t;
    while ((t = g_turn.load(std::memory_order_acquire)) != 1) {
      if (t == kStopTurn) return nullptr;
      sched_yield();
    }
    g_turn.store(0, std::memory_order_release);
  }
}

void BM_YieldPingPong(benchmark::State& state) {
  g_turn.store(0, std::memory_order_relaxed);
  HelperCrew crew(1);
  if (int err = crew.start(pong); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    g_turn.store(1, std::memory_order_release);
    while (g_turn.load(std::memory_order_acquire) != 0) sched_yield();
  }
  double ns = ns_since(start);
  g_turn.store(kStopTurn, std::memory_order_release);
  crew.finish();
  report_per_op(state, ns, 2 * static_cast<uint64_t>(state.iterations()));
}
BENCHMARK(BM_YieldPingPong)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_YieldSwitch/threads:N: the benchmark thread and N-1 helpers all loop on
// sched_yield. One iteration is one yield of the benchmark thread; ns_per_op
// is wall time divided by the yields of all N threads together, i.e. the
// machine's yield throughput inverted. With N threads on one CPU (MNP_PROCS=1
// under the shim, or a native run confined to one CPU) every yield switches
// to another thread and ns_per_op is the cost of one switch; with the threads
// spread over C CPUs it is roughly that cost divided by C, or the bare
// syscall cost divided by C when each thread has a CPU to itself.

void* yield_loop(void* arg) {
  auto* crew = static_cast<HelperCrew*>(arg);
  HelperSlot* self = crew->claim_slot();
  uint64_t n = 0;
  while (!crew->stop.load(std::memory_order_relaxed)) {
    sched_yield();
    self->yields.store(++n, std::memory_order_relaxed);
  }
  return nullptr;
}

void BM_YieldSwitch(benchmark::State& state) {
  HelperCrew crew(static_cast<int>(state.range(0)) - 1);
  if (int err = crew.start(yield_loop); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  uint64_t before = crew.helper_yields();
  Clock::time_point start = Clock::now();
  for (auto _ : state) sched_yield();
  double ns = ns_since(start);
  uint64_t helpers = crew.helper_yields() - before;
  crew.finish();
  report_per_op(state, ns, static_cast<uint64_t>(state.iterations()) + helpers);
}
BENCHMARK(BM_YieldSwitch)->ArgName("threads")->Arg(2)->Arg(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
