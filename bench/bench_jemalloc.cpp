// bench/bench_jemalloc.cpp — what a per-P jemalloc mode would pay per
// allocation, against glibc's malloc and jemalloc's own per-thread cache.
//
// The memory issue asks for a mode in which every G allocates from its P's
// jemalloc cache. jemalloc (Debian's libjemalloc2, 5.3) offers explicit
// caches for that: `mallctl("tcache.create")` and then
// `mallocx(n, MALLOCX_TCACHE(id))` / `dallocx(p, MALLOCX_TCACHE(id))` on
// every call. This program is linked with jemalloc (so malloc and free are
// jemalloc's) and times one workload three ways:
//
//   BM_GlibcMixed/N             glibc's malloc (__libc_malloc/__libc_free):
//                               its per-thread cache, as every program has
//                               without an allocator of its own;
//   BM_JemallocThreadCache/N    jemalloc's malloc/free: its per-thread cache
//                               (per-G state under the shim, which the mode
//                               must not have);
//   BM_JemallocExplicitCache/N  mallocx/dallocx with an explicit cache made
//                               by each thread: the calls a per-P mode would
//                               make, without the lookup of the P's cache.
//
// The workload is bench_mem's BM_MallocMixed: N (1, 2, 64) threads made in
// the body each make 500 rounds of 64 blocks of 16-1,016 bytes, freed in
// another order. ns_per_op: wall time per malloc+free pair over all
// threads. Run it natively (build/bench/bench_jemalloc) to compare the
// rows; scripts/bench-compare also runs it under the shim.
#include <benchmark/benchmark.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>

#include <cstdint>
#include <cstdlib>

#include "bench_util.h"

extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);

namespace {

using namespace bench;

enum Path { kGlibc, kJemallocThread, kJemallocExplicit };

constexpr int kBatch = 64, kRounds = 500;

size_t next_size(uint32_t* x) {
  *x = *x * 1103515245u + 12345u;
  return 16 + ((*x >> 8) % 1001);
}

template <Path path>
void* churn(void* arg) {
  auto seed = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  unsigned tc = 0;
  if (path == kJemallocExplicit) {
    size_t len = sizeof tc;
    if (mallctl("tcache.create", &tc, &len, nullptr, 0) != 0) return arg;
  }
  void* blocks[kBatch];
  for (int r = 0; r < kRounds; r++) {
    for (int i = 0; i < kBatch; i++) {
      size_t n = next_size(&seed);
      void* p = path == kGlibc            ? __libc_malloc(n)
                : path == kJemallocThread ? malloc(n)
                                          : mallocx(n, MALLOCX_TCACHE(tc));
      if (!p) return arg;
      static_cast<unsigned char*>(p)[n - 1] = static_cast<unsigned char>(i);
      blocks[i] = p;
    }
    for (int i = 0; i < kBatch; i++) {
      void* p = blocks[(i * 37) % kBatch];  // 37 is coprime to 64
      if (path == kGlibc) __libc_free(p);
      else if (path == kJemallocThread) free(p);
      else dallocx(p, MALLOCX_TCACHE(tc));
    }
  }
  if (path == kJemallocExplicit) mallctl("tcache.destroy", nullptr, nullptr, &tc, sizeof tc);
  return nullptr;
}

template <Path path>
void BM_Mixed(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  double ns = 0;
  uint64_t pairs = 0;
  for (auto _ : state) {
    double elapsed = time_threads(state, n, churn<path>, "threads whose allocations succeeded");
    if (elapsed < 0) return;
    ns += elapsed;
    pairs += n * kRounds * kBatch;
  }
  report_per_op(state, ns, pairs);
}

void BM_GlibcMixed(benchmark::State& state) { BM_Mixed<kGlibc>(state); }
void BM_JemallocThreadCache(benchmark::State& state) { BM_Mixed<kJemallocThread>(state); }
void BM_JemallocExplicitCache(benchmark::State& state) { BM_Mixed<kJemallocExplicit>(state); }
BENCHMARK(BM_GlibcMixed)->Arg(1)->Arg(2)->Arg(64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_JemallocThreadCache)->Arg(1)->Arg(2)->Arg(64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_JemallocExplicitCache)->Arg(1)->Arg(2)->Arg(64)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
