// bench/bench_sync.cpp — what it costs to wait for another thread.
//
// An ordinary pthread program: it links Google Benchmark and threads, never
// the shim, so scripts/bench-compare times this very binary natively and with
// LD_PRELOAD=build/shim/libmnpthread.so.
//
//   BM_MutexCondPingPong         two threads alternate strictly on a turn
//                                variable guarded by one mutex and one
//                                condvar.
//   BM_MutexContention/threads:N N threads each do kLocksPerThread
//                                lock/increment/unlock on one pthread_mutex.
//   BM_FanOut1000                1,000 workers take tasks from a bounded
//                                queue guarded by a mutex and two condvars;
//                                the benchmark thread produces.
//   BM_Sleepers10k               10,000 threads each usleep(1000) ten times.
//   BM_SemPingPong               two threads hand a turn back and forth with
//                                two sem_t.
//   BM_SemPingPongAltstack       BM_SemPingPong with a helper that first
//                                enables an alternate signal stack, as
//                                every Rust thread does.
//   BM_FutexPingPong             the same with raw FUTEX_WAIT_PRIVATE /
//                                FUTEX_WAKE_PRIVATE on two words.
//   BM_SpinHandoff/N             the benchmark thread hands a unit of work
//                                to each of N helpers through an atomic
//                                flag and spins until all have taken it;
//                                the helpers spin for their flag (no system
//                                call, no yield: redis's I/O threads). More
//                                spinners than Ps: a hand-off waits for the
//                                end of a time slice.
//   BM_SleepBesideHogs/N         the benchmark thread sleeps 1 ms (usleep)
//                                while N threads compute, calling getppid
//                                every 2,000 steps: how late a sleeper that
//                                wakes gets its CPU back from them (the
//                                kernel's wake-up preemption gives it at
//                                once). ns_per_op: wall time per sleep.
//
// As in bench_thread, the work happens on threads the benchmark body creates,
// so everything is timed in wall-clock time: UseRealTime where the whole
// iteration is the thing measured, UseManualTime where thread creation must
// be left out (BM_MutexContention, BM_FanOut1000). `ns_per_op` is wall time
// per hand-off, per lock, per task; BM_Sleepers10k reports only its time per
// run (one iteration), which is what scripts/bench-compare then shows.
//
// Every benchmark checks its own result after the joins (hand-offs seen by
// the helper, the counter the mutex guards, the tasks the workers summed,
// the sleeps done) and calls SkipWithError if it is wrong, so a runtime that
// loses a wake-up or breaks mutual exclusion shows up as ERROR, not as a
// fast number.
//
// Threads that must all be running before the clock starts wait at a gate
// with atomics and sched_yield (as bench_thread's helpers do), so the gate
// does not depend on the mutex being measured.
#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <semaphore.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using namespace bench;

// Creates n threads running fn(arg) into threads; returns 0, or the
// pthread_create error with threads[0, *made) running.
int create_threads(std::vector<pthread_t>& threads, int n, void* (*fn)(void*), void* arg, int* made) {
  threads.resize(static_cast<size_t>(n));
  for (*made = 0; *made < n; (*made)++) {
    int err = pthread_create(&threads[static_cast<size_t>(*made)], nullptr, fn, arg);
    if (err != 0) return err;
  }
  return 0;
}

void join_threads(const std::vector<pthread_t>& threads, int made) {
  for (int i = 0; i < made; i++) pthread_join(threads[static_cast<size_t>(i)], nullptr);
}

// ---------------------------------------------------------------------------
// BM_MutexCondPingPong: the benchmark thread (player 0) and a helper
// (player 1) alternate strictly. turn says whose move it is; both wait on the
// same condvar, and since at most the other player can be waiting, a signal
// suffices. One iteration is one round trip, i.e. two hand-offs; ns_per_op is
// per hand-off.

constexpr int kStopTurn = -1;

struct CondPingPong {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  int turn = 0;               // guarded by mu
  uint64_t helper_moves = 0;  // written only by the helper, read after join
};

void* cond_pong(void* arg) {
  auto* pp = static_cast<CondPingPong*>(arg);
  pthread_mutex_lock(&pp->mu);
  for (;;) {
    while (pp->turn == 0) pthread_cond_wait(&pp->cond, &pp->mu);
    if (pp->turn == kStopTurn) break;
    pp->helper_moves++;
    pp->turn = 0;
    pthread_cond_signal(&pp->cond);
  }
  pthread_mutex_unlock(&pp->mu);
  return nullptr;
}

void BM_MutexCondPingPong(benchmark::State& state) {
  CondPingPong pp;
  Helper helper;
  if (int err = helper.start(cond_pong, &pp); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    pthread_mutex_lock(&pp.mu);
    pp.turn = 1;
    pthread_cond_signal(&pp.cond);
    while (pp.turn != 0) pthread_cond_wait(&pp.cond, &pp.mu);
    pthread_mutex_unlock(&pp.mu);
  }
  double ns = ns_since(start);
  pthread_mutex_lock(&pp.mu);
  pp.turn = kStopTurn;
  pthread_cond_signal(&pp.cond);
  pthread_mutex_unlock(&pp.mu);
  helper.join();
  uint64_t rounds = static_cast<uint64_t>(state.iterations());
  if (pp.helper_moves != rounds) {
    skip_wrong(state, "helper moves", pp.helper_moves, rounds);
    return;
  }
  report_per_op(state, ns, 2 * rounds);
}
BENCHMARK(BM_MutexCondPingPong)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_MutexContention/threads:N: N threads, created inside each iteration,
// wait at a gate until all are running, then each does kLocksPerThread
// lock/increment/unlock on one default mutex. The clock runs from opening
// the gate to the last join, so thread creation is not counted. ns_per_op is
// wall time per lock of all threads together; items_per_second is total
// increments per second. The plain (non-atomic) counter must come out at
// exactly N * kLocksPerThread.

constexpr int kLocksPerThread = 20000;

struct Contention {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  uint64_t counter = 0;         // guarded by mu
  std::atomic<int> ready{0};    // threads waiting at the gate
  std::atomic<bool> go{false};  // the gate, opened by the benchmark thread
};

void* contend(void* arg) {
  auto* c = static_cast<Contention*>(arg);
  c->ready.fetch_add(1, std::memory_order_release);
  while (!c->go.load(std::memory_order_acquire)) sched_yield();
  for (int i = 0; i < kLocksPerThread; i++) {
    pthread_mutex_lock(&c->mu);
    c->counter++;
    pthread_mutex_unlock(&c->mu);
  }
  return nullptr;
}

void BM_MutexContention(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const uint64_t want = static_cast<uint64_t>(n) * kLocksPerThread;
  std::vector<pthread_t> threads;
  double total_ns = 0;
  uint64_t locks = 0;
  for (auto _ : state) {
    Contention c;
    int made = 0;
    int err = create_threads(threads, n, contend, &c, &made);
    if (err == 0) {
      while (c.ready.load(std::memory_order_acquire) < n) sched_yield();
    }
    Clock::time_point start = Clock::now();
    c.go.store(true, std::memory_order_release);
    join_threads(threads, made);
    double ns = ns_since(start);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    if (c.counter != want) {
      skip_wrong(state, "counter", c.counter, want);
      break;
    }
    state.SetIterationTime(ns / 1e9);
    total_ns += ns;
    locks += want;
  }
  if (!state.error_occurred()) report_per_op(state, total_ns, locks);
}
BENCHMARK(BM_MutexContention)
    ->ArgName("threads")
    ->Arg(2)
    ->Arg(8)
    ->Arg(64)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// BM_FanOut1000: kWorkers workers are created and wait on an empty queue;
// then the clock starts and the benchmark thread pushes kTasks tasks into a
// bounded ring (kQueueCap), closes the queue (the stop marker) and joins
// every worker. A worker pops under the mutex, then outside it adds the task
// to its own counters. ns_per_op is wall time per task; items_per_second is
// tasks per second. Afterwards the workers' counts must add up to kTasks and
// their sums to 0 + 1 + ... + kTasks - 1: no task lost or run twice.
//
// The producer waits on not_full when the ring is full, workers on not_empty
// when it is empty; each push signals one worker, each pop that makes room
// signals the producer, closing broadcasts to every worker.

constexpr int kWorkers = 1000;
constexpr int kTasks = 20000;
constexpr int kQueueCap = 256;

struct alignas(64) WorkerCount {
  uint64_t tasks = 0;  // written only by its worker, read after join
  uint64_t sum = 0;    // likewise
};

struct TaskQueue {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
  pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
  // Guarded by mu: ring[head, head + len) mod kQueueCap holds the tasks;
  // closed means no task will be pushed any more.
  uint64_t ring[kQueueCap];
  int head = 0;
  int len = 0;
  bool closed = false;

  std::atomic<int> started{0};  // workers that have claimed a count slot
  std::vector<WorkerCount> counts;

  TaskQueue() : counts(kWorkers) {}
};

void* fan_worker(void* arg) {
  auto* q = static_cast<TaskQueue*>(arg);
  WorkerCount* mine = &q->counts[static_cast<size_t>(q->started.fetch_add(1))];
  for (;;) {
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed) pthread_cond_wait(&q->not_empty, &q->mu);
    if (q->len == 0) {  // closed and drained
      pthread_mutex_unlock(&q->mu);
      return nullptr;
    }
    uint64_t task = q->ring[q->head];
    q->head = (q->head + 1) % kQueueCap;
    bool was_full = q->len-- == kQueueCap;
    if (was_full) pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    mine->tasks++;
    mine->sum += task;
  }
}

void BM_FanOut1000(benchmark::State& state) {
  const uint64_t want_sum = static_cast<uint64_t>(kTasks) * (kTasks - 1) / 2;
  std::vector<pthread_t> threads;
  double total_ns = 0;
  uint64_t done = 0;
  for (auto _ : state) {
    TaskQueue q;
    int made = 0;
    int err = create_threads(threads, kWorkers, fan_worker, &q, &made);
    while (q.started.load() < made) sched_yield();
    Clock::time_point start = Clock::now();
    for (int i = 0; err == 0 && i < kTasks; i++) {
      pthread_mutex_lock(&q.mu);
      while (q.len == kQueueCap) pthread_cond_wait(&q.not_full, &q.mu);
      q.ring[(q.head + q.len) % kQueueCap] = static_cast<uint64_t>(i);
      q.len++;
      pthread_cond_signal(&q.not_empty);
      pthread_mutex_unlock(&q.mu);
    }
    pthread_mutex_lock(&q.mu);
    q.closed = true;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
    join_threads(threads, made);
    double ns = ns_since(start);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    uint64_t tasks = 0, sum = 0;
    for (const WorkerCount& w : q.counts) {
      tasks += w.tasks;
      sum += w.sum;
    }
    if (tasks != kTasks) {
      skip_wrong(state, "tasks run", tasks, kTasks);
      break;
    }
    if (sum != want_sum) {
      skip_wrong(state, "sum of tasks", sum, want_sum);
      break;
    }
    state.SetIterationTime(ns / 1e9);
    total_ns += ns;
    done += kTasks;
  }
  if (!state.error_occurred()) report_per_op(state, total_ns, done);
}
BENCHMARK(BM_FanOut1000)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// BM_Sleepers10k: one iteration creates kSleepers threads, each calling
// usleep(kSleepUs) kSleeps times, and joins them all; the time per iteration
// is the wall time of that whole run, creation included. The floor is
// kSleeps * kSleepUs = 10 ms; everything above it is the cost of creating,
// parking, waking by timer and reaping 10,000 threads.

constexpr int kSleepers = 10000;
constexpr int kSleeps = 10;
constexpr useconds_t kSleepUs = 1000;

struct Sleepers {
  std::atomic<uint64_t> sleeps{0};  // usleep calls that returned 0
};

void* sleeper(void* arg) {
  auto* s = static_cast<Sleepers*>(arg);
  for (int i = 0; i < kSleeps; i++) {
    if (usleep(kSleepUs) == 0) s->sleeps.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

void BM_Sleepers10k(benchmark::State& state) {
  const uint64_t want = static_cast<uint64_t>(kSleepers) * kSleeps;
  std::vector<pthread_t> threads;
  for (auto _ : state) {
    Sleepers s;
    int made = 0;
    int err = create_threads(threads, kSleepers, sleeper, &s, &made);
    join_threads(threads, made);
    if (err != 0) {
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    uint64_t got = s.sleeps.load(std::memory_order_relaxed);
    if (got != want) {
      skip_wrong(state, "usleep calls returning 0", got, want);
      break;
    }
  }
}
BENCHMARK(BM_Sleepers10k)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// BM_SemPingPong: the benchmark thread posts ping and waits on pong; the
// helper waits on ping and posts pong. One iteration is a round trip, two
// hand-offs; ns_per_op is per hand-off. To stop, the benchmark thread sets
// stop and posts ping once more.

struct SemPingPong {
  sem_t ping;
  sem_t pong;
  std::atomic<bool> stop{false};
  uint64_t helper_moves = 0;  // written only by the helper, read after join
};

int sem_wait_intr(sem_t* s) {
  int r;
  while ((r = sem_wait(s)) != 0 && errno == EINTR) {
  }
  return r;
}

void* sem_pong(void* arg) {
  auto* pp = static_cast<SemPingPong*>(arg);
  for (;;) {
    if (sem_wait_intr(&pp->ping) != 0) return nullptr;
    if (pp->stop.load(std::memory_order_acquire)) return nullptr;
    pp->helper_moves++;
    sem_post(&pp->pong);
  }
}

// The helper of BM_SemPingPongAltstack: an alternate signal stack first.
void* sem_pong_altstack(void* arg) {
  std::vector<char> alt(64 * 1024);
  stack_t ss = {};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  if (sigaltstack(&ss, nullptr) != 0) return nullptr;
  void* r = sem_pong(arg);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  return r;
}

void sem_ping_pong(benchmark::State& state, void* (*pong)(void*)) {
  SemPingPong pp;
  sem_init(&pp.ping, 0, 0);
  sem_init(&pp.pong, 0, 0);
  Helper helper;
  if (int err = helper.start(pong, &pp); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  int wait_err = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    sem_post(&pp.ping);
    if (sem_wait_intr(&pp.pong) != 0) {
      wait_err = errno;
      break;
    }
  }
  double ns = ns_since(start);
  pp.stop.store(true, std::memory_order_release);
  sem_post(&pp.ping);
  helper.join();
  sem_destroy(&pp.ping);
  sem_destroy(&pp.pong);
  if (wait_err != 0) {
    skip_with_errno(state, "sem_wait", wait_err);
    return;
  }
  uint64_t rounds = static_cast<uint64_t>(state.iterations());
  if (pp.helper_moves != rounds) {
    skip_wrong(state, "helper moves", pp.helper_moves, rounds);
    return;
  }
  report_per_op(state, ns, 2 * rounds);
}

void BM_SemPingPong(benchmark::State& state) { sem_ping_pong(state, sem_pong); }
BENCHMARK(BM_SemPingPong)->UseRealTime();

void BM_SemPingPongAltstack(benchmark::State& state) { sem_ping_pong(state, sem_pong_altstack); }
BENCHMARK(BM_SemPingPongAltstack)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_FutexPingPong: two words, ping and pong, each 0 (empty) or 1 (full);
// ping may also be kFutexStop. The benchmark thread fills ping and wakes it,
// then waits for pong to fill and empties it; the helper waits for ping,
// empties it, fills pong and wakes it. Every store is followed by a
// FUTEX_WAKE whether or not anyone sleeps, and every wait is the classic
// `while (word == 0) FUTEX_WAIT(word, 0)`, so a lost wake-up hangs the run
// rather than passing. One iteration is two hand-offs; ns_per_op is per
// hand-off.

constexpr uint32_t kFutexStop = 2;

struct FutexPingPong {
  std::atomic<uint32_t> ping{0};
  std::atomic<uint32_t> pong{0};
  uint64_t helper_moves = 0;  // written only by the helper, read after join
};

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

long futex(std::atomic<uint32_t>* word, int op, uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, nullptr, nullptr, 0);
}

// Waits until *word is not 0 and returns what it holds.
uint32_t futex_wait_full(std::atomic<uint32_t>* word) {
  uint32_t v;
  while ((v = word->load(std::memory_order_acquire)) == 0) futex(word, FUTEX_WAIT_PRIVATE, 0);
  return v;
}

void futex_fill(std::atomic<uint32_t>* word, uint32_t v) {
  word->store(v, std::memory_order_release);
  futex(word, FUTEX_WAKE_PRIVATE, 1);
}

void* futex_pong(void* arg) {
  auto* pp = static_cast<FutexPingPong*>(arg);
  for (;;) {
    if (futex_wait_full(&pp->ping) == kFutexStop) return nullptr;
    pp->ping.store(0, std::memory_order_relaxed);
    pp->helper_moves++;
    futex_fill(&pp->pong, 1);
  }
}

void BM_FutexPingPong(benchmark::State& state) {
  FutexPingPong pp;
  Helper helper;
  if (int err = helper.start(futex_pong, &pp); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    futex_fill(&pp.ping, 1);
    futex_wait_full(&pp.pong);
    pp.pong.store(0, std::memory_order_relaxed);
  }
  double ns = ns_since(start);
  futex_fill(&pp.ping, kFutexStop);
  helper.join();
  uint64_t rounds = static_cast<uint64_t>(state.iterations());
  if (pp.helper_moves != rounds) {
    skip_wrong(state, "helper moves", pp.helper_moves, rounds);
    return;
  }
  report_per_op(state, ns, 2 * rounds);
}
BENCHMARK(BM_FutexPingPong)->UseRealTime();

// ---- BM_SpinHandoff ----------------------------------------------------------

constexpr int kSpinMaxHelpers = 4;
constexpr uint32_t kSpinStop = 2;

struct alignas(64) SpinSlot {
  std::atomic<uint32_t> pending{0};
  uint64_t taken = 0;  // (helper)
};

void* spin_helper(void* arg) {
  auto* slot = static_cast<SpinSlot*>(arg);
  for (;;) {
    uint32_t v;
    while ((v = slot->pending.load(std::memory_order_acquire)) == 0) {
    }
    if (v == kSpinStop) return nullptr;
    slot->taken++;
    slot->pending.store(0, std::memory_order_release);
  }
}

void BM_SpinHandoff(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  SpinSlot slots[kSpinMaxHelpers];
  Helper helpers[kSpinMaxHelpers];
  auto stop = [&](int started) {
    for (int i = 0; i < started; i++) slots[i].pending.store(kSpinStop, std::memory_order_release);
    for (int i = 0; i < started; i++) helpers[i].join();
  };
  for (int i = 0; i < n; i++) {
    if (int err = helpers[i].start(spin_helper, &slots[i]); err != 0) {
      stop(i);
      skip_with_errno(state, "pthread_create", err);
      return;
    }
  }
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    for (int i = 0; i < n; i++) slots[i].pending.store(1, std::memory_order_release);
    for (int i = 0; i < n; i++)
      while (slots[i].pending.load(std::memory_order_acquire) != 0) {
      }
  }
  double ns = ns_since(start);
  stop(n);
  uint64_t rounds = static_cast<uint64_t>(state.iterations());
  for (int i = 0; i < n; i++)
    if (slots[i].taken != rounds) {
      skip_wrong(state, "hand-offs taken", slots[i].taken, rounds);
      return;
    }
  report_per_op(state, ns, rounds);
}
BENCHMARK(BM_SpinHandoff)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- BM_SleepBesideHogs ------------------------------------------------------

constexpr useconds_t kBesideSleepUs = 1000;

void BM_SleepBesideHogs(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  Hogs shared;
  std::vector<pthread_t> threads;
  int made = 0;
  if (int err = create_threads(threads, n, hog_main, &shared, &made); err != 0) {
    shared.stop.store(true);
    join_threads(threads, made);
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  uint64_t slept = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    if (usleep(kBesideSleepUs) == 0) slept++;
  }
  double ns = ns_since(start);
  shared.stop.store(true);
  join_threads(threads, made);
  uint64_t rounds = static_cast<uint64_t>(state.iterations());
  if (slept != rounds) {
    skip_wrong(state, "usleep calls returning 0", slept, rounds);
    return;
  }
  if (shared.rounds.load() == 0) {
    skip_wrong(state, "hog rounds", 0, 1);
    return;
  }
  report_per_op(state, ns, rounds);
}
BENCHMARK(BM_SleepBesideHogs)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
