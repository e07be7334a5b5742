// bench/bench_proc.cpp — what the shim costs processes that gain nothing
// from M:N: start-up, and a single-threaded event loop.
//
// An ordinary program: it links Google Benchmark, never the shim, so
// scripts/bench-compare times this very binary natively and with
// LD_PRELOAD=build/shim/libmnpthread.so. Children inherit the environment,
// so under the shim they run preloaded too (with the same MNP_PROCS).
//
//   BM_ForkExecTrue         fork, execve("/bin/true"), waitpid: one whole
//                           short process per iteration. Under the shim the
//                           difference is the start-up and exit of the
//                           runtime in the child (plus the fork handlers in
//                           the parent); scripts/bench-compare prints it as
//                           the delta per process.
//   BM_SpawnTrue            posix_spawn("/bin/true"), waitpid: the same
//                           without fork. glibc's posix_spawn runs the child
//                           on a stack of its own and calls no interposer,
//                           so under the shim the difference is the start-up
//                           and exit of the runtime in the child alone.
//   BM_SpawnTrueShimDelta   what the shim adds to a process's start-up and
//                           exit, measured inside one run: posix_spawn of
//                           /bin/true with and without the shim in the
//                           child's LD_PRELOAD (build/shim next to this
//                           binary, or MNP_BENCH_SHIM), alternating, so
//                           both see the same machine. Reports delta_us
//                           (median of the per-pair differences), the two
//                           children's medians and their page faults
//                           (scripts/bench-compare prints them). The
//                           parent's own mode does not enter: compare the
//                           native run's line with the shim run's.
//   BM_SocketpairPingPong   two processes (this one and a copy of it started
//                           with --pong-child) bounce one byte over a
//                           socketpair; each waits in epoll_wait, then
//                           reads and writes it: the shape of one worker of
//                           lighttpd or memcached. ns_per_op is one round
//                           trip.
//
// Wall-clock time (UseRealTime). Each benchmark checks its result (the exit
// status of every child, every byte that came back) and calls SkipWithError
// when it is wrong. BM_ForkExecTrue and BM_SpawnTrue also report
// child_minflt, the page faults of one /bin/true (wait4's ru_minflt): on a
// VM with shadow page tables each costs 10-25 us, most of what start-up
// costs there (scripts/bench-compare prints both modes' counts).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"

extern char** environ;

namespace {

// fork and execve argv; keep_fd (if not -1) is made to survive the exec.
pid_t spawn(char* const argv[], int keep_fd = -1) {
  pid_t pid = fork();
  if (pid == 0) {
    if (keep_fd >= 0) fcntl(keep_fd, F_SETFD, 0);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  return pid;
}

// Waits for /bin/true's process pid and adds its page faults to *minflt;
// false (the benchmark skipped with the reason) unless it exited with
// status 0.
bool reap_true(benchmark::State& state, pid_t pid, double* minflt) {
  int st = 0;
  struct rusage ru = {};
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  *minflt += static_cast<double>(ru.ru_minflt);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return true;
  bench::skip_wrong(state, "/bin/true exit status", static_cast<uint64_t>(st), 0);
  return false;
}

void BM_ForkExecTrue(benchmark::State& state) {
  char path[] = "/bin/true";
  char* const argv[] = {path, nullptr};
  double minflt = 0;
  for (auto _ : state) {
    pid_t pid = spawn(argv);
    if (pid < 0) {
      bench::skip_with_errno(state, "fork", errno);
      return;
    }
    if (!reap_true(state, pid, &minflt)) return;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["child_minflt"] = benchmark::Counter(minflt, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_ForkExecTrue)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_SpawnTrue(benchmark::State& state) {
  char path[] = "/bin/true";
  char* const argv[] = {path, nullptr};
  double minflt = 0;
  for (auto _ : state) {
    pid_t pid;
    if (int e = posix_spawn(&pid, path, nullptr, nullptr, argv, environ); e != 0) {
      bench::skip_with_errno(state, "posix_spawn", e);
      return;
    }
    if (!reap_true(state, pid, &minflt)) return;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["child_minflt"] = benchmark::Counter(minflt, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_SpawnTrue)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The shim for BM_SpawnTrueShimDelta: MNP_BENCH_SHIM, else build/shim's,
// found from this binary's place in build/bench; empty if it cannot be read
// (the loader would only warn, and the "shim" children would run without).
std::string shim_path() {
  std::string p;
  if (const char* e = getenv("MNP_BENCH_SHIM"); e && *e) {
    p = e;
  } else {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return {};
    p.assign(self, static_cast<size_t>(n));
    p.resize(p.rfind('/'));
    p += "/../shim/libmnpthread.so";
  }
  return access(p.c_str(), R_OK) == 0 ? p : std::string();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void BM_SpawnTrueShimDelta(benchmark::State& state) {
  std::string shim = shim_path();
  if (shim.empty()) {
    state.SkipWithError("no readable MNP_BENCH_SHIM, or build/shim/libmnpthread.so beside this binary");
    return;
  }
  // The two environments: this process's without LD_PRELOAD, and the same
  // with LD_PRELOAD=shim.
  std::vector<std::string> keep;
  for (char** e = environ; *e; e++)
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0) keep.emplace_back(*e);
  std::string preload = "LD_PRELOAD=" + shim;
  std::vector<char*> plain, with_shim;
  for (auto& v : keep) {
    plain.push_back(v.data());
    with_shim.push_back(v.data());
  }
  with_shim.push_back(preload.data());
  plain.push_back(nullptr);
  with_shim.push_back(nullptr);
  char path[] = "/bin/true";
  char* const argv[] = {path, nullptr};
  std::vector<double> t_plain, t_shim, deltas;
  double flt_plain = 0, flt_shim = 0;
  bool shim_first = false;
  for (auto _ : state) {
    double us[2];
    shim_first = !shim_first;  // neither child always runs right after the other
    for (int j = 0; j < 2; j++) {
      int k = shim_first ? 1 - j : j;
      auto start = bench::Clock::now();
      pid_t pid;
      if (int e = posix_spawn(&pid, path, nullptr, nullptr, argv, k ? with_shim.data() : plain.data()); e != 0) {
        bench::skip_with_errno(state, "posix_spawn", e);
        return;
      }
      if (!reap_true(state, pid, k ? &flt_shim : &flt_plain)) return;
      us[k] = bench::ns_since(start) / 1e3;
    }
    t_plain.push_back(us[0]);
    t_shim.push_back(us[1]);
    deltas.push_back(us[1] - us[0]);
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.counters["delta_us"] = median(deltas);
  state.counters["plain_us"] = median(t_plain);
  state.counters["shim_us"] = median(t_shim);
  state.counters["plain_minflt"] = benchmark::Counter(flt_plain, benchmark::Counter::kAvgIterations);
  state.counters["shim_minflt"] = benchmark::Counter(flt_shim, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_SpawnTrueShimDelta)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

// One side of the ping-pong: wait for fd to be readable, read one byte,
// write it back (the child) or the next one (the parent). Returns the byte
// read, -1 at end of file, -2 on error.
int wait_read(int ep, int fd) {
  struct epoll_event ev;
  for (;;) {
    int n = epoll_wait(ep, &ev, 1, -1);
    if (n == 1) break;
    if (n < 0 && errno != EINTR) return -2;
  }
  unsigned char c;
  ssize_t r = read(fd, &c, 1);
  if (r == 0) return -1;
  if (r != 1) return -2;
  return c;
}

int epoll_on(int fd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -1;
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -1;
  return ep;
}

// The child: echo every byte until end of file.
int pong_child(int fd) {
  int ep = epoll_on(fd);
  if (ep < 0) return 2;
  for (;;) {
    int c = wait_read(ep, fd);
    if (c == -1) return 0;
    if (c < 0) return 3;
    unsigned char b = static_cast<unsigned char>(c);
    if (write(fd, &b, 1) != 1) return 4;
  }
}

void BM_SocketpairPingPong(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    bench::skip_with_errno(state, "socketpair", errno);
    return;
  }
  std::string fdarg = "--pong-child=" + std::to_string(sv[1]);
  char self[] = "/proc/self/exe";
  char* const argv[] = {self, fdarg.data(), nullptr};
  pid_t pid = spawn(argv, sv[1]);
  close(sv[1]);
  if (pid < 0) {
    bench::skip_with_errno(state, "fork", errno);
    close(sv[0]);
    return;
  }
  int fd = sv[0];
  int ep = epoll_on(fd);
  uint64_t rounds = 0, bad = 0;
  auto start = bench::Clock::now();
  for (auto _ : state) {
    unsigned char b = static_cast<unsigned char>(rounds);
    if (write(fd, &b, 1) != 1 || wait_read(ep, fd) != b) {
      bad++;
      break;
    }
    rounds++;
  }
  double ns = bench::ns_since(start);
  close(fd);
  close(ep);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (bad) {
    bench::skip_wrong(state, "round trips that came back right", rounds, rounds + bad);
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    bench::skip_wrong(state, "pong child exit status", static_cast<uint64_t>(st), 0);
  } else {
    bench::report_per_op(state, ns, rounds);
  }
}
BENCHMARK(BM_SocketpairPingPong)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && strncmp(argv[1], "--pong-child=", 13) == 0) return pong_child(atoi(argv[1] + 13));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
