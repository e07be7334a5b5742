// bench/bench_mem.cpp — what threads cost in memory, while they live and
// after they are gone.
//
// An ordinary pthread program (see bench/meson.build). Each benchmark runs
// once (Iterations(1)) and reports what it measured as counters; the time
// per iteration means little here. Read the counters with
// `scripts/bench-compare --bench mem -v` or by running the binary:
//
//   BM_SleepersRss/N           N (5,000, 10,000) threads each sleep 1 s.
//                              rss_mib: the process's RSS 900 ms into the
//                              sleep (every thread created and parked for a
//                              while); kib_per_thread: its growth per thread.
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
//                              for 1.5 s. The environment variable
//                              BENCH_PARKED_N, if set, replaces N.
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
void BM_SleepersRss(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<pthread_t> ts;
  for (auto _ : state) {
    double before = rss_kib();
    int err;
    size_t made = create_all(ts, n, nullptr, sleeper, reinterpret_cast<void*>(intptr_t{1000}), &err);
    sleep_ms(900);
    double during = rss_kib();
    join_all(ts, made);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
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
    sleep_ms(1500);
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

}  // namespace

BENCHMARK_MAIN();
