// bench/bench_mem.cpp — what threads cost in memory, while they live and
// after they are gone.
//
// An ordinary pthread program (see bench/meson.build). Each benchmark runs
// once (Iterations(1)) and reports what it measured as counters; the time
// per iteration means little here. Read the counters with
// `scripts/bench-compare --bench mem -v` or by running the binary:
//
//   BM_SleepersRss/N           N (5,000, 10,000) threads each sleep 1 s.
//                              rss_mib: the process's RSS 900 ms after the
//                              first was created, when every one sleeps
//                              (none has woken yet; under the shim, parked
//                              threads are compacted after 100 ms);
//                              kib_per_thread: RSS above that at the
//                              first such run in the process, per thread
//                              (a run's own start may still hold the
//                              previous run's freed threads);
//                              create_ms: how long creating them took (an
//                              error if 850 ms or more: some may have woken).
//   BM_BurstRelease/sleep:10000
//                              10,000 threads sleep 200 ms at once and exit;
//                              1.5 s after the last has been joined,
//                              delta_mib = RSS then minus RSS before the burst.
//   BM_BurstRelease/short:100000
//                              the same for 100,000 threads that return at
//                              once, all created before any is joined.
//   BM_ParkedMany/N            N threads with 16 KiB stacks block on one
//                              condition variable at once; count (threads
//                              made; natively pid_max stops it),
//                              creates_per_s, and kib_per_thread: the RSS
//                              growth per thread once they have been idle
//                              for 1.5 s. The environment variables
//                              BENCH_PARKED_N and BENCH_PARKED_IDLE_MS, if
//                              set, replace N and the 1.5 s (a million
//                              threads take longer to compact).
//
//   BM_MallocMixed/N           N (1, 2, 64) threads, made inside the body
//                              (so that under the shim they are Gs like a
//                              program's and the wall time covers them all),
//                              each make 500 rounds of 64 mallocs of 16-1,016
//                              bytes freed in another order; ns_per_op: wall
//                              time per malloc+free pair over all threads.
//   BM_MallocChurnRss/5000     5,000 threads (64 KiB stacks) each make 20
//                              such rounds, then keep 8 small blocks and wait
//                              at a gate; kib_per_thread: RSS growth per live
//                              thread once all wait (the memory issue's first
//                              row).
//
// RSS is VmRSS from /proc/self/status.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_util.h"

namespace {

using namespace bench;

double rss_kib() {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kib = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtod(line + 6, nullptr);
  fclose(f);
  return kib;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void* sleeper(void* arg) {
  sleep_ms(reinterpret_cast<intptr_t>(arg));
  return nullptr;
}

void* return_arg(void* arg) { return arg; }

// Creates n threads running fn(arg) with attr; returns how many were made.
size_t create_all(std::vector<pthread_t>& ts, size_t n, const pthread_attr_t* attr, void* (*fn)(void*), void* arg,
                  int* err) {
  ts.resize(n);
  *err = 0;
  size_t made = 0;
  for (; made < n; made++) {
    *err = pthread_create(&ts[made], attr, fn, arg);
    if (*err != 0) break;
  }
  return made;
}

void join_all(std::vector<pthread_t>& ts, size_t n) {
  for (size_t i = 0; i < n; i++) pthread_join(ts[i], nullptr);
}

// ---------------------------------------------------------------------------
double g_sleepers_base_kib = -1;  // RSS when the first BM_SleepersRss began

void BM_SleepersRss(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<pthread_t> ts;
  for (auto _ : state) {
    if (g_sleepers_base_kib < 0) g_sleepers_base_kib = rss_kib();
    double before = g_sleepers_base_kib;
    int err;
    Clock::time_point start = Clock::now();
    size_t made = create_all(ts, n, nullptr, sleeper, reinterpret_cast<void*>(intptr_t{1000}), &err);
    auto created = static_cast<long>(ns_since(start) / 1e6);
    // Read while all of them sleep: the first wakes 1 s after t0. Read 900
    // ms after the last create instead, this read fell into the wake-ups
    // of the first ones under the shim, whose creates are fast and whose
    // compacted threads come back at their wake-up (88 MiB instead of 21).
    if (created < 900) sleep_ms(900 - created);
    double during = rss_kib();
    join_all(ts, made);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    if (created >= 850) {
      state.SkipWithError("creating the threads took 850 ms or more: the first may have woken before the read");
      break;
    }
    state.counters["create_ms"] = static_cast<double>(created);
    state.counters["rss_mib"] = during / 1024;
    state.counters["kib_per_thread"] = (during - before) / static_cast<double>(made);
  }
}
BENCHMARK(BM_SleepersRss)->Arg(5000)->Arg(10000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
void BM_BurstRelease(benchmark::State& state) {
  const bool short_lived = state.range(0) == 0;
  const size_t n = static_cast<size_t>(state.range(1));
  std::vector<pthread_t> ts;
  for (auto _ : state) {
    double before = rss_kib();
    int err;
    size_t made = short_lived ? create_all(ts, n, nullptr, return_arg, nullptr, &err)
                              : create_all(ts, n, nullptr, sleeper, reinterpret_cast<void*>(intptr_t{200}), &err);
    // Natively pid_max may stop a burst of short threads: join what was
    // made and go on until n have run.
    size_t total = made;
    double peak = rss_kib();
    join_all(ts, made);
    while (short_lived && err == EAGAIN && total < n) {
      made = create_all(ts, n - total < 10000 ? n - total : 10000, nullptr, return_arg, nullptr, &err);
      join_all(ts, made);
      total += made;
    }
    if (err != 0 && total < n) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    sleep_ms(1500);
    double after = rss_kib();
    state.counters["before_mib"] = before / 1024;
    state.counters["peak_mib"] = peak / 1024;
    state.counters["after_mib"] = after / 1024;
    state.counters["delta_mib"] = (after - before) / 1024;
  }
}
BENCHMARK(BM_BurstRelease)
    ->ArgNames({"short", "n"})
    ->Args({0, 100000})
    ->Args({1, 10000})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
struct Gate {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  bool open = false;
};

void* wait_gate(void* arg) {
  auto* g = static_cast<Gate*>(arg);
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  return nullptr;
}

void BM_ParkedMany(benchmark::State& state) {
  size_t n = static_cast<size_t>(state.range(0));
  if (const char* e = getenv("BENCH_PARKED_N")) n = strtoul(e, nullptr, 10);
  long idle_ms = 1500;
  if (const char* e = getenv("BENCH_PARKED_IDLE_MS")) idle_ms = strtol(e, nullptr, 10);
  std::vector<pthread_t> ts;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 16384);
  for (auto _ : state) {
    Gate g;
    double before = rss_kib();
    int err;
    Clock::time_point start = Clock::now();
    size_t made = create_all(ts, n, &attr, wait_gate, &g, &err);
    double create_ns = ns_since(start);
    sleep_ms(idle_ms);
    double idle = rss_kib();
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    join_all(ts, made);
    if (err != 0) fprintf(stderr, "BM_ParkedMany: pthread_create: %s after %zu threads\n", strerror(err), made);
    state.counters["count"] = static_cast<double>(made);
    state.counters["creates_per_s"] = static_cast<double>(made) * 1e9 / create_ns;
    state.counters["kib_per_thread"] = (idle - before) / static_cast<double>(made ? made : 1);
    state.counters["rss_mib"] = idle / 1024;
  }
  pthread_attr_destroy(&attr);
}
BENCHMARK(BM_ParkedMany)->Arg(100000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// Mixed-size malloc/free: rounds of 64 blocks of 16-1,016 bytes (sizes from a
// fixed sequence, a different start per thread), each round freed in an
// order other than allocation's. The workload of the memory issue's first
// row, for its allocator targets.
constexpr int kChurnBatch = 64;
size_t churn_size(uint32_t* x) {
  *x = *x * 1103515245u + 12345u;
  return 16 + ((*x >> 8) % 1001);
}
// One thread's rounds; returns a checksum that keeps the stores (0: a
// malloc failed).
uint64_t churn(uint32_t seed, int rounds) {
  void* blocks[kChurnBatch];
  uint64_t sum = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < kChurnBatch; i++) {
      size_t n = churn_size(&seed);
      auto* p = static_cast<unsigned char*>(malloc(n));
      if (!p) return 0;
      p[0] = static_cast<unsigned char>(n | 1);
      p[n - 1] = static_cast<unsigned char>(i);
      blocks[i] = p;
    }
    for (int i = 0; i < kChurnBatch; i++) {
      auto* p = static_cast<unsigned char*>(blocks[(i * 37) % kChurnBatch]);  // 37 is coprime to 64
      sum += p[0];
      free(p);
    }
  }
  return sum;
}

// Joins the `made` threads of ts, each returning null if its mallocs
// succeeded. False (the benchmark skipped with the reason) if fewer than n
// were made (err: pthread_create's) or one failed.
bool join_churners(benchmark::State& state, std::vector<pthread_t>& ts, size_t made, size_t n, int err) {
  size_t bad = 0;
  for (size_t i = 0; i < made; i++) {
    void* r = nullptr;
    pthread_join(ts[i], &r);
    bad += r != nullptr;
  }
  if (made < n) {
    skip_with_errno(state, "pthread_create", err);
    return false;
  }
  if (bad) {
    skip_wrong(state, "threads whose malloc succeeded", n - bad, n);
    return false;
  }
  return true;
}

void* churn_thread(void* arg) {
  auto seed = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  return churn(seed, 500) == 0 ? arg : nullptr;
}

void BM_MallocMixed(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  double ns = 0;
  uint64_t pairs = 0;
  for (auto _ : state) {
    double elapsed = time_threads(state, n, churn_thread, "threads whose malloc succeeded");
    if (elapsed < 0) return;
    ns += elapsed;
    pairs += n * 500 * kChurnBatch;
  }
  report_per_op(state, ns, pairs);
}
BENCHMARK(BM_MallocMixed)->Arg(1)->Arg(2)->Arg(64)->UseManualTime()->Unit(benchmark::kMicrosecond);

struct ChurnGate {
  Gate gate;
  size_t ready = 0;  // threads done churning (gate.mu)
};
struct ChurnArg {
  ChurnGate* g;
  uint32_t seed;
};
void* churn_then_wait(void* a) {
  auto* c = static_cast<ChurnArg*>(a);
  void* keep[8];
  bool ok = churn(c->seed, 20) != 0;
  for (int i = 0; i < 8; i++) keep[i] = malloc(16 + 6 * i);
  Gate& gate = c->g->gate;
  pthread_mutex_lock(&gate.mu);
  c->g->ready++;
  pthread_cond_broadcast(&gate.cv);
  while (!gate.open) pthread_cond_wait(&gate.cv, &gate.mu);
  pthread_mutex_unlock(&gate.mu);
  for (void* p : keep) free(p);
  return ok ? nullptr : a;
}

void BM_MallocChurnRss(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 65536);
  std::vector<pthread_t> ts(n);
  std::vector<ChurnArg> args(n);
  for (auto _ : state) {
    ChurnGate g;
    double before = rss_kib();
    size_t made = 0;
    int err = 0;
    for (; made < n; made++) {
      args[made] = {&g, static_cast<uint32_t>(made + 1) * 7919u};
      if ((err = pthread_create(&ts[made], &attr, churn_then_wait, &args[made])) != 0) break;
    }
    pthread_mutex_lock(&g.gate.mu);
    while (g.ready < made) pthread_cond_wait(&g.gate.cv, &g.gate.mu);
    pthread_mutex_unlock(&g.gate.mu);
    double during = rss_kib();
    pthread_mutex_lock(&g.gate.mu);
    g.gate.open = true;
    pthread_cond_broadcast(&g.gate.cv);
    pthread_mutex_unlock(&g.gate.mu);
    if (!join_churners(state, ts, made, n, err)) break;
    state.counters["kib_per_thread"] = (during - before) / static_cast<double>(n);
    state.counters["rss_mib"] = during / 1024;
  }
  pthread_attr_destroy(&attr);
}
BENCHMARK(BM_MallocChurnRss)->Arg(5000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
