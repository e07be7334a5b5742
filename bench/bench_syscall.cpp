// bench/bench_syscall.cpp — what it costs to block in the kernel: system
// calls the shim brackets with entersyscall/exitsyscall, and fds the
// netpoller waits on.
//
// An ordinary pthread program: it links Google Benchmark and threads, never
// the shim, so scripts/bench-compare times this very binary natively and with
// LD_PRELOAD=build/shim/libmnpthread.so.
//
//   BM_SyscallFastPath      pread(2) of one byte from /dev/zero in a loop
//                           (with a second thread alive: see below): a
//                           call that returns at once. Natively the bare
//                           syscall; under the shim plus entersyscall and
//                           exitsyscall's fast path (the P taken back with
//                           one CAS), so the difference is their cost.
//   BM_HandoffNoKernel      getc(3) from an in-memory stream: a wrapped call
//                           that never enters the kernel, so the difference
//                           is the wrapper plus entersyscall/exitsyscall.
//   BM_SyscallSlowPath      a helper blocks in splice(2) from an empty pipe;
//                           the benchmark thread spins kSlowSpinNs, long
//                           enough for sysmon to retake the helper's P, then
//                           writes one byte. ns_per_op is the wake latency:
//                           from the write to splice having returned in the
//                           helper,
//                           which under the shim includes exitsyscall's slow
//                           path (find another P, or queue the G).
//   BM_PipeReaders4         four readers each block in read(2) on a pipe of
//                           their own; the benchmark thread writes 64-byte
//                           messages to the pipes in turn.
//   BM_ItimerInPoll         main waits in poll(2) on an idle pipe while a
//                           5 ms ITIMER_REAL sends SIGALRM and a second
//                           thread sleeps in 2 ms steps; an iteration ends
//                           when the handler has run once more. ns_per_op
//                           is time per handler run: 5 ms natively, longer
//                           for every tick merged into one still pending
//                           (under the shim an idle M may take the signal
//                           and keep it for main: core/sigpend.h).
//   BM_PipeReplyBesideHogs/N  an echo thread blocked in read(2) on a pipe
//                           answers each 8-byte message on a second pipe,
//                           while N threads compute (a getppid every 2,000
//                           steps). ns_per_op is the round trip: how soon a
//                           thread whose fd became ready gets a CPU back
//                           from threads that compute.
//   BM_PipePingPongThreads  two threads of this process pass one byte back
//                           and forth through two pipes with blocking read
//                           and write: ns_per_op is one round trip. With no
//                           more threads than Ps the shim makes the real
//                           calls (the few-threads path, core/sched.h
//                           wait_few); BM_SocketpairPingPong (bench_proc)
//                           is the same between two processes.
//   BM_EchoServer/N         thread-per-connection TCP echo server on
//                           127.0.0.1 and N client threads, each doing
//                           kEchoRounds round trips of 64 bytes.
//
// Under the shim read, write, send, recv, accept and the poll family on
// pipes and sockets are netpoller calls (the G parks until the fd is ready;
// no kernel thread blocks), while pread, splice and the like are bracketed
// by entersyscall/exitsyscall (the kernel thread blocks and sysmon hands
// its P to another M). That is why BM_SyscallSlowPath blocks in splice: a
// read or poll would measure the netpoller, which BM_PipeReaders4 and
// BM_EchoServer measure.
//
// Everything is timed in wall-clock time: UseRealTime where the whole
// iteration is the thing measured, UseManualTime where thread creation and
// connection set-up must be left out (BM_EchoServer). `ns_per_op` is wall
// time per wake-up, per message, per request; scripts/bench-compare prefers
// it to the time per iteration. items_per_second is messages or requests
// per second.
//
// Every benchmark checks its own result after the joins (bytes read, the
// sequence of messages each reader saw, every echo compared with what was
// sent) and calls SkipWithError if it is wrong, so a lost wake-up shows up as
// a hang and a lost or corrupted byte as ERROR, not as a fast number.
//
// BM_EchoServer/5000 has 10,000 threads natively (each with a 64 KiB
// stack) and 10,001 fds: the first run raises RLIMIT_NOFILE's soft limit to
// the hard limit and the benchmark reports an error if that is too low.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using namespace bench;

// Nanoseconds on the steady clock, comparable between threads.
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Reads exactly n bytes unless EOF or an error comes first; returns the count
// read, or -1 with errno set if nothing was.
ssize_t read_full(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return got > 0 ? static_cast<ssize_t>(got) : -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// Writes all n bytes; returns n, or -1 with errno set.
ssize_t write_full(int fd, const void* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = write(fd, static_cast<const char*>(buf) + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------------------
// BM_SyscallFastPath: one pread of one byte from /dev/zero per iteration. The
// byte must come back as 0 every time.
//
// A second thread, blocked in read on a pipe, stays alive throughout, so
// that natively too the process is multi-threaded: the kernel then takes a
// reference on the file in every fd look-up (the fd table is shared), as it
// does under the shim, whose Ms are kernel threads. Without it the native
// figure would leave out ~30 ns of kernel work that any threaded program
// pays, and the difference would not be the runtime's cost.

void* wait_for_eof(void* arg) {
  char c;
  while (read(*static_cast<int*>(arg), &c, 1) < 0 && errno == EINTR) {
  }
  return nullptr;
}

void BM_SyscallFastPath(benchmark::State& state) {
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    skip_with_errno(state, "open /dev/zero", errno);
    return;
  }
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe", errno);
    close(fd);
    return;
  }
  Helper other;
  if (int err = other.start(wait_for_eof, &hold[0]); err != 0) {
    skip_with_errno(state, "pthread_create", err);
    close(fd);
    close(hold[0]);
    close(hold[1]);
    return;
  }
  uint64_t nonzero = 0;
  for (auto _ : state) {
    char byte = 1;
    ssize_t n = pread(fd, &byte, 1, 0);
    if (n != 1) {
      skip_with_errno(state, "pread", n < 0 ? errno : EIO);
      break;
    }
    nonzero += byte != 0;
  }
  close(fd);
  close(hold[1]);  // EOF: the helper returns
  other.join();
  close(hold[0]);
  if (state.error_occurred()) return;
  if (nonzero != 0) {
    skip_wrong(state, "non-zero bytes from /dev/zero", nonzero, 0);
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_SyscallFastPath)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_HandoffNoKernel: getc from an in-memory stream (fmemopen) per
// iteration. getc is one of the calls the shim brackets with
// entersyscall/exitsyscall (stdio reads can block on pipes and ttys), but on
// a memory stream it never enters the kernel, so the shim's time minus the
// native time is exactly the wrapper plus entersyscall and exitsyscall's
// fast path. The bytes read must be the stream's.

void BM_HandoffNoKernel(benchmark::State& state) {
  static char data[4096];
  for (size_t i = 0; i < sizeof data; i++) data[i] = static_cast<char>('a' + i % 26);
  FILE* f = fmemopen(data, sizeof data, "r");
  if (!f) {
    skip_with_errno(state, "fmemopen", errno);
    return;
  }
  size_t pos = 0;
  uint64_t wrong = 0;
  for (auto _ : state) {
    int c = getc(f);
    if (c == EOF) {
      rewind(f);
      pos = 0;
      c = getc(f);
    }
    wrong += c != 'a' + static_cast<int>(pos % 26);
    pos++;
  }
  fclose(f);
  if (wrong != 0) {
    skip_wrong(state, "bytes different from the stream's", wrong, 0);
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_HandoffNoKernel)->UseRealTime();

// ---------------------------------------------------------------------------
// BM_SyscallSlowPath: one iteration is one wake-up of a helper blocked in
// splice from the read end of a pipe (into a sink pipe). The benchmark
// thread waits (with sched_yield) until the helper has consumed the
// previous byte, spins kSlowSpinNs so that the helper is asleep in splice
// and, under the shim, sysmon (20 us rounds) has found its P in a syscall
// and handed it off; then it notes the time and writes kSlowGo. The helper,
// back from splice, notes the time, reads the byte from the sink and adds
// the difference to its total.
// ns_per_op is the mean of those differences: natively the kernel's wake-up
// latency, under the shim that plus exitsyscall's slow path. The time per
// iteration (about kSlowSpinNs more) is not the figure of interest. Both
// sides include the time the kernel takes to wake a thread asleep on an idle
// CPU, which on a VM can be tens of microseconds.

constexpr int64_t kSlowSpinNs = 200 * 1000;
constexpr char kSlowGo = 'g';
constexpr char kSlowStop = 's';

struct SlowPath {
  int fds[2] = {-1, -1};
  int sink[2] = {-1, -1};
  // Set by the benchmark thread just before each write (release); read by
  // the helper once poll has returned (acquire).
  std::atomic<int64_t> sent_ns{0};
  // Bumped by the helper after each byte is consumed; the benchmark thread
  // waits for it before the next write.
  std::atomic<uint64_t> rounds{0};
  std::atomic<bool> failed{false};  // the helper stopped on an error
  // Written only by the helper, read after join.
  double wake_ns = 0;
  uint64_t bad_bytes = 0;
  int err = 0;
  const char* err_what = nullptr;
};

void* slow_reader(void* arg) {
  auto* sp = static_cast<SlowPath*>(arg);
  for (;;) {
    // splice blocks in the kernel until the byte arrives, then moves it to
    // the sink pipe, where it is read.
    ssize_t r = splice(sp->fds[0], nullptr, sp->sink[1], nullptr, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    int64_t woke = now_ns();
    if (r != 1) {
      sp->err = r < 0 ? errno : EIO;
      sp->err_what = "splice";
      break;
    }
    char byte;
    if (read(sp->sink[0], &byte, 1) != 1) {
      sp->err = errno != 0 ? errno : EIO;
      sp->err_what = "read";
      break;
    }
    if (byte == kSlowStop) return nullptr;
    if (byte != kSlowGo) sp->bad_bytes++;
    sp->wake_ns += static_cast<double>(woke - sp->sent_ns.load(std::memory_order_acquire));
    sp->rounds.fetch_add(1, std::memory_order_release);
  }
  sp->failed.store(true, std::memory_order_release);
  return nullptr;
}

void spin_for(int64_t ns) {
  int64_t until = now_ns() + ns;
  while (now_ns() < until) {
  }
}

void BM_SyscallSlowPath(benchmark::State& state) {
  SlowPath sp;
  if (pipe2(sp.fds, O_CLOEXEC) != 0 || pipe2(sp.sink, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe2", errno);
    return;
  }
  Helper helper;
  if (int err = helper.start(slow_reader, &sp); err != 0) {
    for (int fd : {sp.fds[0], sp.fds[1], sp.sink[0], sp.sink[1]}) close(fd);
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  uint64_t sent = 0;
  int write_err = 0;
  for (auto _ : state) {
    while (sp.rounds.load(std::memory_order_acquire) != sent && !sp.failed.load(std::memory_order_acquire))
      sched_yield();
    if (sp.failed.load(std::memory_order_acquire)) break;
    spin_for(kSlowSpinNs);
    sp.sent_ns.store(now_ns(), std::memory_order_release);
    if (write(sp.fds[1], &kSlowGo, 1) != 1) {
      write_err = errno != 0 ? errno : EIO;
      break;
    }
    sent++;
  }
  while (sp.rounds.load(std::memory_order_acquire) != sent && !sp.failed.load(std::memory_order_acquire)) sched_yield();
  if (!sp.failed.load(std::memory_order_acquire) && write(sp.fds[1], &kSlowStop, 1) != 1 && write_err == 0)
    write_err = errno != 0 ? errno : EIO;
  helper.join();
  for (int fd : {sp.fds[0], sp.fds[1], sp.sink[0], sp.sink[1]}) close(fd);
  if (write_err != 0) {
    skip_with_errno(state, "write", write_err);
    return;
  }
  if (sp.err != 0) {
    skip_with_errno(state, sp.err_what, sp.err);
    return;
  }
  uint64_t rounds = sp.rounds.load(std::memory_order_relaxed);
  if (rounds != static_cast<uint64_t>(state.iterations())) {
    skip_wrong(state, "wake-ups", rounds, static_cast<uint64_t>(state.iterations()));
    return;
  }
  if (sp.bad_bytes != 0) {
    skip_wrong(state, "wrong bytes read", sp.bad_bytes, 0);
    return;
  }
  report_per_op(state, sp.wake_ns, rounds);
}
BENCHMARK(BM_SyscallSlowPath)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------
// BM_PipeReaders4: kPipeReaders readers, each on a pipe of its own, block in
// read until a kMsgBytes message arrives. One iteration is one message,
// written by the benchmark thread to pipe (sequence number % kPipeReaders);
// its first 8 bytes are that sequence number. When the loop ends the write
// ends are closed, each reader drains its pipe to EOF, and the clock stops
// after the joins, so ns_per_op (wall time per message) counts every message
// as read, not just written. Each reader must see exactly its own sequence
// numbers, in order.

constexpr int kPipeReaders = 4;
constexpr size_t kMsgBytes = 64;

struct alignas(64) PipeReader {
  pthread_t thread;
  int fds[2] = {-1, -1};
  uint64_t first = 0;                   // the sequence number it expects first
  std::atomic<int>* started = nullptr;  // PipeFanOut::started
  // Written only by the reader, read after join.
  uint64_t msgs = 0;
  uint64_t out_of_order = 0;
  int err = 0;
};

struct PipeFanOut {
  std::atomic<int> started{0};  // readers that have begun running
  PipeReader readers[kPipeReaders];
};

void* pipe_reader(void* arg) {
  auto* r = static_cast<PipeReader*>(arg);
  r->started->fetch_add(1, std::memory_order_release);
  uint64_t want = r->first;
  for (;;) {
    unsigned char msg[kMsgBytes];
    ssize_t n = read_full(r->fds[0], msg, kMsgBytes);
    if (n == 0) return nullptr;  // EOF: the benchmark thread is done
    if (n != static_cast<ssize_t>(kMsgBytes)) {
      r->err = n < 0 ? errno : EIO;
      return nullptr;
    }
    uint64_t seq;
    memcpy(&seq, msg, sizeof seq);
    if (seq != want) r->out_of_order++;
    want += kPipeReaders;
    r->msgs++;
  }
}

void BM_PipeReaders4(benchmark::State& state) {
  PipeFanOut fan;
  int made = 0;
  int err = 0;
  const char* what = "pipe2";
  for (; made < kPipeReaders; made++) {
    PipeReader& r = fan.readers[made];
    r.first = static_cast<uint64_t>(made);
    r.started = &fan.started;
    if (pipe2(r.fds, O_CLOEXEC) != 0) {
      err = errno;
      what = "pipe2";
      break;
    }
    if ((err = pthread_create(&r.thread, nullptr, pipe_reader, &r)) != 0) {
      close(r.fds[0]);
      close(r.fds[1]);
      what = "pthread_create";
      break;
    }
  }
  while (fan.started.load(std::memory_order_acquire) < made) sched_yield();
  unsigned char msg[kMsgBytes];
  memset(msg, 0x5a, sizeof msg);
  uint64_t seq = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    if (err != 0) break;
    memcpy(msg, &seq, sizeof seq);
    if (write_full(fan.readers[seq % kPipeReaders].fds[1], msg, kMsgBytes) < 0) {
      err = errno;
      what = "write";
      break;
    }
    seq++;
  }
  for (int i = 0; i < made; i++) close(fan.readers[i].fds[1]);
  for (int i = 0; i < made; i++) pthread_join(fan.readers[i].thread, nullptr);
  double ns = ns_since(start);
  for (int i = 0; i < made; i++) close(fan.readers[i].fds[0]);
  if (err != 0) {
    skip_with_errno(state, what, err);
    return;
  }
  uint64_t msgs = 0, out_of_order = 0;
  for (const PipeReader& r : fan.readers) {
    if (r.err != 0) {
      skip_with_errno(state, "read", r.err);
      return;
    }
    msgs += r.msgs;
    out_of_order += r.out_of_order;
  }
  if (msgs != seq) {
    skip_wrong(state, "messages read", msgs, seq);
    return;
  }
  if (out_of_order != 0) {
    skip_wrong(state, "messages out of sequence", out_of_order, 0);
    return;
  }
  report_per_op(state, ns, msgs);
}
BENCHMARK(BM_PipeReaders4)->UseRealTime();

// A reply awaited by yielding: the writer puts a number in a pipe and calls
// sched_yield until the reader, blocked in read, has seen it (GLib's
// g_thread_yield loops do this). Natively the kernel wakes the reader at
// once; under the shim the reader is parked on the netpoller, which a yield
// loop now harvests (it waited for sysmon's 10 ms harvest at 1 P before).
struct YieldReply {
  int fds[2];
  std::atomic<int64_t> seen{-1};
  int err = 0;
};
void* yield_reply_reader(void* a) {
  auto* y = static_cast<YieldReply*>(a);
  for (;;) {
    int64_t v;
    if (read(y->fds[0], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
      y->err = errno;
      y->seen.store(-2, std::memory_order_release);
      return nullptr;
    }
    y->seen.store(v, std::memory_order_release);
    if (v < 0) return nullptr;
  }
}
void BM_YieldForPipeReply(benchmark::State& state) {
  YieldReply y;
  if (pipe2(y.fds, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe2", errno);
    return;
  }
  pthread_t t;
  if (int e = pthread_create(&t, nullptr, yield_reply_reader, &y); e != 0) {
    skip_with_errno(state, "pthread_create", e);
    return;
  }
  int64_t k = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    if (write_full(y.fds[1], &k, sizeof k) < 0) break;
    while (y.seen.load(std::memory_order_acquire) != k && y.seen.load(std::memory_order_acquire) != -2) sched_yield();
    k++;
  }
  double ns = ns_since(start);
  int64_t end = -1;
  write_full(y.fds[1], &end, sizeof end);
  pthread_join(t, nullptr);
  close(y.fds[0]);
  close(y.fds[1]);
  if (y.err != 0) {
    skip_with_errno(state, "read", y.err);
    return;
  }
  report_per_op(state, ns, static_cast<uint64_t>(k));
}
BENCHMARK(BM_YieldForPipeReply)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- BM_PipePingPongThreads ---------------------------------------------------

struct PingPong {
  int ping[2];
  int pong[2];
  int err = 0;
};
void* ping_pong_echo(void* a) {
  auto* p = static_cast<PingPong*>(a);
  for (;;) {
    unsigned char c;
    ssize_t r = read(p->ping[0], &c, 1);
    if (r == 0) return nullptr;  // the benchmark is done
    if (r != 1 || write(p->pong[1], &c, 1) != 1) {
      p->err = errno;
      return nullptr;
    }
  }
}
void BM_PipePingPongThreads(benchmark::State& state) {
  PingPong p;
  if (pipe2(p.ping, O_CLOEXEC) != 0 || pipe2(p.pong, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe2", errno);
    return;
  }
  pthread_t t;
  if (int e = pthread_create(&t, nullptr, ping_pong_echo, &p); e != 0) {
    skip_with_errno(state, "pthread_create", e);
    return;
  }
  uint64_t rounds = 0, bad = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    unsigned char c = static_cast<unsigned char>(rounds), back = 0;
    if (write(p.ping[1], &c, 1) != 1 || read(p.pong[0], &back, 1) != 1 || back != c) {
      bad++;
      break;
    }
    rounds++;
  }
  double ns = ns_since(start);
  close(p.ping[1]);
  pthread_join(t, nullptr);
  close(p.ping[0]);
  close(p.pong[0]);
  close(p.pong[1]);
  if (p.err != 0) {
    skip_with_errno(state, "echo thread", p.err);
    return;
  }
  if (bad) {
    skip_wrong(state, "round trips that came back right", rounds, rounds + bad);
    return;
  }
  report_per_op(state, ns, rounds);
}
BENCHMARK(BM_PipePingPongThreads)->UseRealTime();

// ---- BM_PipeReplyBesideHogs ---------------------------------------------------

struct BesideHogs {
  int req[2], rep[2];
  Hogs hogs;
  int err = 0;
};
void* beside_echo(void* a) {
  auto* b = static_cast<BesideHogs*>(a);
  for (;;) {
    int64_t v;
    if (read(b->req[0], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
      b->err = errno;
      return nullptr;
    }
    if (v < 0 || write_full(b->rep[1], &v, sizeof v) < 0) return nullptr;
  }
}
void BM_PipeReplyBesideHogs(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  BesideHogs b;
  if (pipe2(b.req, O_CLOEXEC) != 0 || pipe2(b.rep, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe2", errno);
    return;
  }
  std::vector<pthread_t> hogs(static_cast<size_t>(n));
  pthread_t echo;
  int made = 0;
  int e = pthread_create(&echo, nullptr, beside_echo, &b);
  for (; e == 0 && made < n; made++) e = pthread_create(&hogs[static_cast<size_t>(made)], nullptr, hog_main, &b.hogs);
  int64_t k = 0;
  bool wrong = false;
  Clock::time_point start = Clock::now();
  if (e == 0) {
    for (auto _ : state) {
      int64_t got = -1;
      if (write_full(b.req[1], &k, sizeof k) < 0 ||
          read(b.rep[0], &got, sizeof got) != static_cast<ssize_t>(sizeof got) || got != k) {
        wrong = true;
        break;
      }
      k++;
    }
  }
  double ns = ns_since(start);
  b.hogs.stop.store(true);
  for (int i = 0; i < made; i++) pthread_join(hogs[static_cast<size_t>(i)], nullptr);
  int64_t end = -1;
  write_full(b.req[1], &end, sizeof end);
  pthread_join(echo, nullptr);
  for (int fd : {b.req[0], b.req[1], b.rep[0], b.rep[1]}) close(fd);
  if (e != 0) {
    skip_with_errno(state, "pthread_create", e);
    return;
  }
  if (wrong || b.err != 0) {
    skip_wrong(state, "replies", static_cast<uint64_t>(k), static_cast<uint64_t>(state.iterations()));
    return;
  }
  report_per_op(state, ns, static_cast<uint64_t>(k));
}
BENCHMARK(BM_PipeReplyBesideHogs)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------
// BM_EchoServer/N: a listening socket on 127.0.0.1 (ephemeral port), an
// acceptor thread that makes one server thread per accepted connection, and
// N client threads. Each client connects (TCP_NODELAY), waits at a gate
// until all N are connected and all N accepted, then does kEchoRounds round
// trips: write kMsgBytes naming itself and the round, read kMsgBytes back,
// compare. A server thread echoes what it reads until EOF. The clock runs
// from opening the gate to the last client join, so thread creation and
// connection set-up are left out; ns_per_op is wall time per request (one
// round trip of one client) and items_per_second is requests per second.
// Every echo must match, and the servers must have echoed exactly
// N * kEchoRounds * kMsgBytes bytes.
//
// The gate is a mutex and two condvars. Waking the N clients from it is
// inside the clock, once per run, against N * kEchoRounds round trips. The
// listening socket is closed before the gate opens (everything is accepted
// by then), so a failed acceptor resets the connections it left queued
// instead of leaving their clients waiting for an echo forever.
//
// kEchoRounds is small so that the native run with 5,000 connections (10,000
// threads on a few CPUs) finishes in a few seconds; each size runs once per
// repetition (Iterations(1)).

constexpr int kEchoRounds = 20;
constexpr size_t kEchoStack = 64 * 1024;

struct EchoRun {
  int listen_fd = -1;
  struct sockaddr_in addr = {};
  int conns = 0;

  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t all_ready = PTHREAD_COND_INITIALIZER;  // the benchmark thread waits
  pthread_cond_t open = PTHREAD_COND_INITIALIZER;       // the clients wait
  int ready = 0;                                        // guarded by mu
  int expect = 0;   // guarded by mu: clients created; the last one to arrive signals
  bool go = false;  // guarded by mu

  // Written only by the acceptor, read after it is joined.
  std::vector<pthread_t> servers;
  int accept_err = 0;
  int server_create_err = 0;

  std::atomic<uint64_t> round_trips{0};   // echoes that matched
  std::atomic<uint64_t> bad_echoes{0};    // echoes short, failed or different
  std::atomic<uint64_t> echoed_bytes{0};  // bytes the servers wrote back
  std::atomic<uint64_t> server_errors{0};
  std::atomic<int> client_err{0};  // first errno a client saw
};

struct EchoConn {
  EchoRun* run;
  int fd;
};

void note_client_err(EchoRun* run, int err) {
  int zero = 0;
  run->client_err.compare_exchange_strong(zero, err != 0 ? err : EIO);
}

void* echo_server(void* arg) {
  auto* c = static_cast<EchoConn*>(arg);
  char buf[256];
  uint64_t bytes = 0;
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) c->run->server_errors.fetch_add(1, std::memory_order_relaxed);
    if (n <= 0) break;
    if (write_full(c->fd, buf, static_cast<size_t>(n)) < 0) {
      c->run->server_errors.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    bytes += static_cast<uint64_t>(n);
  }
  c->run->echoed_bytes.fetch_add(bytes, std::memory_order_relaxed);
  close(c->fd);
  delete c;
  return nullptr;
}

void* echo_acceptor(void* arg) {
  auto* run = static_cast<EchoRun*>(arg);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kEchoStack);
  run->servers.reserve(static_cast<size_t>(run->conns));
  while (static_cast<int>(run->servers.size()) < run->conns) {
    int fd = accept4(run->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      run->accept_err = errno;
      break;
    }
    pthread_t t;
    auto* c = new EchoConn{run, fd};
    if (int err = pthread_create(&t, &attr, echo_server, c); err != 0) {
      run->server_create_err = err;
      close(fd);
      delete c;
      break;
    }
    run->servers.push_back(t);
  }
  pthread_attr_destroy(&attr);
  return nullptr;
}

void* echo_client(void* arg) {
  auto* run = static_cast<EchoRun*>(arg);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0;
  if (!ok) note_client_err(run, errno);
  if (ok && connect(fd, reinterpret_cast<const struct sockaddr*>(&run->addr), sizeof run->addr) != 0) {
    note_client_err(run, errno);
    ok = false;
  }
  if (ok) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  pthread_mutex_lock(&run->mu);
  int id = run->ready++;
  if (run->ready >= run->expect) pthread_cond_signal(&run->all_ready);
  while (!run->go) pthread_cond_wait(&run->open, &run->mu);
  pthread_mutex_unlock(&run->mu);
  for (int i = 0; ok && i < kEchoRounds; i++) {
    char msg[kMsgBytes], echo[kMsgBytes];
    memset(msg, 0, sizeof msg);
    snprintf(msg, sizeof msg, "client %d round %d", id, i);
    if (write_full(fd, msg, sizeof msg) < 0) {
      note_client_err(run, errno);
      run->bad_echoes.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    ssize_t n = read_full(fd, echo, sizeof echo);
    if (n != static_cast<ssize_t>(sizeof echo) || memcmp(msg, echo, sizeof msg) != 0) {
      if (n < 0) note_client_err(run, errno);
      run->bad_echoes.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    run->round_trips.fetch_add(1, std::memory_order_relaxed);
  }
  if (fd >= 0) close(fd);
  return nullptr;
}

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit
// now in force.
rlim_t raise_nofile() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// Opens the listening socket on 127.0.0.1, port chosen by the kernel;
// returns 0 or an errno.
int echo_listen(EchoRun* run) {
  run->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (run->listen_fd < 0) return errno;
  run->addr.sin_family = AF_INET;
  run->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  run->addr.sin_port = 0;
  socklen_t len = sizeof run->addr;
  if (bind(run->listen_fd, reinterpret_cast<const struct sockaddr*>(&run->addr), sizeof run->addr) != 0 ||
      getsockname(run->listen_fd, reinterpret_cast<struct sockaddr*>(&run->addr), &len) != 0 ||
      listen(run->listen_fd, run->conns) != 0) {
    int err = errno;
    close(run->listen_fd);
    run->listen_fd = -1;
    return err;
  }
  return 0;
}

void BM_EchoServer(benchmark::State& state) {
  const int conns = static_cast<int>(state.range(0));
  const rlim_t need = 2 * static_cast<rlim_t>(conns) + 64;
  if (rlim_t have = raise_nofile(); have < need) {
    skip_wrong(state, "RLIMIT_NOFILE soft limit (raised to the hard limit)", have, need);
    return;
  }
  const uint64_t want = static_cast<uint64_t>(conns) * kEchoRounds;
  double total_ns = 0;
  uint64_t requests = 0;
  for (auto _ : state) {
    EchoRun run;
    run.conns = conns;
    run.expect = conns;
    if (int err = echo_listen(&run); err != 0) {
      skip_with_errno(state, "listen socket", err);
      break;
    }
    Helper acceptor;
    if (int err = acceptor.start(echo_acceptor, &run); err != 0) {
      close(run.listen_fd);
      skip_with_errno(state, "pthread_create", err);
      break;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kEchoStack);
    std::vector<pthread_t> clients(static_cast<size_t>(conns));
    int made = 0;
    int create_err = 0;
    for (; made < conns; made++) {
      create_err = pthread_create(&clients[static_cast<size_t>(made)], &attr, echo_client, &run);
      if (create_err != 0) break;
    }
    pthread_attr_destroy(&attr);
    if (create_err != 0) {
      // The acceptor would wait for connections that never come.
      shutdown(run.listen_fd, SHUT_RDWR);
    }
    pthread_mutex_lock(&run.mu);
    run.expect = made;
    while (run.ready < made) pthread_cond_wait(&run.all_ready, &run.mu);
    pthread_mutex_unlock(&run.mu);
    acceptor.join();
    close(run.listen_fd);
    Clock::time_point start = Clock::now();
    pthread_mutex_lock(&run.mu);
    run.go = true;
    pthread_cond_broadcast(&run.open);
    pthread_mutex_unlock(&run.mu);
    for (int i = 0; i < made; i++) pthread_join(clients[static_cast<size_t>(i)], nullptr);
    double ns = ns_since(start);
    for (pthread_t t : run.servers) pthread_join(t, nullptr);
    if (create_err != 0) {
      skip_with_errno(state, "pthread_create", create_err);
      break;
    }
    if (run.accept_err != 0) {
      skip_with_errno(state, "accept", run.accept_err);
      break;
    }
    if (run.server_create_err != 0) {
      skip_with_errno(state, "pthread_create (server)", run.server_create_err);
      break;
    }
    if (int err = run.client_err.load(); err != 0) {
      skip_with_errno(state, "client", err);
      break;
    }
    uint64_t got = run.round_trips.load();
    if (got != want || run.bad_echoes.load() != 0) {
      skip_wrong(state, "matching echoes", got, want);
      break;
    }
    if (run.server_errors.load() != 0) {
      skip_wrong(state, "server read/write errors", run.server_errors.load(), 0);
      break;
    }
    if (run.echoed_bytes.load() != want * kMsgBytes) {
      skip_wrong(state, "bytes echoed", run.echoed_bytes.load(), want * kMsgBytes);
      break;
    }
    state.SetIterationTime(ns / 1e9);
    total_ns += ns;
    requests += want;
  }
  if (!state.error_occurred()) report_per_op(state, total_ns, requests);
}
BENCHMARK(BM_EchoServer)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(5000)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

// ---------------------------------------------------------------------------
std::atomic<uint64_t> g_alarms{0};

void count_alarm(int) { g_alarms.fetch_add(1, std::memory_order_relaxed); }

void* sleep_steps(void* arg) {
  auto* stop = static_cast<std::atomic<bool>*>(arg);
  while (!stop->load(std::memory_order_relaxed)) usleep(2000);
  return nullptr;
}

void BM_ItimerInPoll(benchmark::State& state) {
  struct sigaction sa = {}, old_sa;
  sa.sa_handler = count_alarm;
  sigaction(SIGALRM, &sa, &old_sa);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    skip_with_errno(state, "pipe2", errno);
    return;
  }
  std::atomic<bool> stop{false};
  pthread_t t;
  int err = pthread_create(&t, nullptr, sleep_steps, &stop);
  struct itimerval tick = {{0, 5000}, {0, 5000}}, off = {};
  if (err == 0) setitimer(ITIMER_REAL, &tick, nullptr);
  uint64_t runs = 0, unexpected = 0;
  Clock::time_point start = Clock::now();
  for (auto _ : state) {
    if (err != 0) break;
    uint64_t before = g_alarms.load(std::memory_order_relaxed);
    while (g_alarms.load(std::memory_order_relaxed) == before) {
      struct pollfd pf = {p[0], POLLIN, 0};
      int r = poll(&pf, 1, 1000);
      if (r != -1 || errno != EINTR) unexpected++;  // nothing is written: only EINTR ends it
    }
    runs++;
  }
  double ns = ns_since(start);
  setitimer(ITIMER_REAL, &off, nullptr);
  stop.store(true);
  if (err == 0) pthread_join(t, nullptr);
  sigaction(SIGALRM, &old_sa, nullptr);
  close(p[0]);
  close(p[1]);
  if (err != 0) {
    skip_with_errno(state, "pthread_create", err);
    return;
  }
  if (unexpected != 0) {
    skip_wrong(state, "polls not ended by EINTR", unexpected, 0);
    return;
  }
  report_per_op(state, ns, runs);
}
BENCHMARK(BM_ItimerInPoll)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
