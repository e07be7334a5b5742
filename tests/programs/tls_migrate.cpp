// tls_migrate — per-thread state survives sched_yield (and migration).
//
// Under the shim with MNP_PROCS=2, sched_yield lets another kernel thread
// pick the G up; everything glibc and libstdc++ keep per thread must follow
// the G, not the kernel thread.  Each part runs in T threads (default 16),
// thread i doing a different number of iterations so the Ps run out of work
// at different times and steal from each other.  Every 16th iteration also
// sleeps 20 us (outside any lock): the timer wake-up often resumes the G on
// the other kernel thread.  The checks hold across the sleeps too.
//
//   errno       errno set (directly and by a failing call) before a yield is
//               unchanged after it; &errno is stable.
//   tls         `__thread` initialised values (42, a string) in every new
//               thread, a zero-initialised counter, a C++ `thread_local`
//               object with constructor and destructor (runs counted and
//               printed after the joins), addresses stable across yields and
//               distinct between threads (all threads are alive at once when
//               the addresses are recorded), <ctype.h> works in new threads.
//   exceptions  inside a catch block: yields, a nested throw/catch, then
//               `throw;` and catch again; std::current_exception and
//               std::uncaught_exceptions stay consistent (they live in
//               libstdc++'s per-thread __cxa_eh_globals), also inside a
//               destructor run during unwinding.
//   stdio       flockfile (twice: recursive) on a shared tmpfile(), one line
//               written with putc_unlocked and yields between the characters,
//               funlockfile; afterwards every line must be intact and each
//               thread's lines in order (the FILE lock owner is THREAD_SELF).
//
// Fails when any of this state is shared per kernel thread instead of per
// thread: lost errno, wrong TLS values, shared addresses, wrong destructor
// counts, crashes in the C++ runtime, interleaved lines, or a hang.
// MNP-CHECK migrations=N counts yields and sleeps after which the kernel
// thread id (a gettid syscall instruction) changed: always 0 natively.  MNP-CHECK kthreads_max is
// sampled while all threads are alive (> threads natively, <= MNP_PROCS + a
// few under the shim).
//
// usage: tls_migrate [all|errno|tls|exceptions|stdio] [threads] [iterations]
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "mnp_check.h"

namespace {

enum Part { kErrno, kTls, kExceptions, kStdio, kParts };
const char* const kPartNames[kParts] = {"errno", "tls", "exceptions", "stdio"};

struct Ctx {
  int id = 0;
  long iters = 0;
  long migrations = 0;
  long yields = 0;
  long sleep_points = 0;
  long failures[kParts] = {};
  const char* first_failure = nullptr;
  uintptr_t tls_addr = 0;
  uintptr_t thread_local_addr = 0;
};

bool g_run[kParts];
int g_threads = 16;
std::atomic<int> g_arrived{0};
std::atomic<int> g_tl_ctors{0};
std::atomic<int> g_tl_dtors{0};
std::atomic<long long> g_kthreads_max{0};
FILE* g_file = nullptr;

// The kernel thread's own id, by the syscall instruction itself: gettid()
// and syscall(SYS_gettid) give each thread's id, which under the shim is the
// G's and never changes.
long raw_gettid() {
  long r;
  asm volatile("syscall" : "=a"(r) : "0"(long{SYS_gettid}) : "rcx", "r11", "memory");
  return r;
}

void yield(Ctx& c) {
  c.yields++;
  long before = raw_gettid();
  sched_yield();
  if (raw_gettid() != before) c.migrations++;
}

// Every 16th call sleeps briefly instead: a sleeping G is parked and woken by
// a timer, which under the shim often resumes it on the other kernel thread
// (yields alone mostly keep a G on its own P's queue).
void sleep_point(Ctx& c) {
  if (++c.sleep_points % 16 != 0) return;
  long before = raw_gettid();
  usleep(20);
  if (raw_gettid() != before) c.migrations++;
}

void fail(Ctx& c, Part p, const char* what) {
  c.failures[p]++;
  if (c.first_failure == nullptr) c.first_failure = what;
}

// ---- errno ---------------------------------------------------------------

void part_errno(Ctx& c) {
  int* const where = &errno;
  for (long i = 0; i < c.iters; i++) {
    int v = 1 + static_cast<int>((c.id * 131 + i) % 4000);
    errno = v;
    yield(c);
    if (errno != v) fail(c, kErrno, "errno changed across sched_yield");
    errno = 0;
    if (close(-1) != -1 || errno != EBADF) fail(c, kErrno, "close(-1) did not set EBADF");
    yield(c);
    yield(c);
    if (errno != EBADF) fail(c, kErrno, "EBADF lost across sched_yield");
    if (&errno != where) fail(c, kErrno, "&errno changed across sched_yield");
    errno = v;
    sleep_point(c);
    if (errno != v) fail(c, kErrno, "errno changed across usleep");
  }
}

// ---- __thread / thread_local ----------------------------------------------

__thread int t_init42 = 42;
__thread long t_counter;
__thread char t_text[32] = "initial-tls-image";

struct Tracker {
  int owner = -1;
  long touches = 0;
  Tracker() { g_tl_ctors.fetch_add(1); }
  ~Tracker() {
    if (owner >= 0) g_tl_dtors.fetch_add(1);
  }
};
thread_local Tracker t_tracker;

void part_tls(Ctx& c) {
  if (t_init42 != 42) fail(c, kTls, "__thread int initialiser not seen");
  if (t_counter != 0) fail(c, kTls, "__thread zero-initialised variable not zero");
  if (strcmp(t_text, "initial-tls-image") != 0) fail(c, kTls, "__thread char[] initialiser not seen");
  if (t_tracker.owner != -1) fail(c, kTls, "thread_local object not freshly constructed");
  if (!isalpha('a') || isalpha('1') || toupper('b') != 'B') fail(c, kTls, "ctype broken in new thread");
  t_tracker.owner = c.id;
  const long* counter_addr = &t_counter;
  const Tracker* tracker_addr = &t_tracker;
  for (long i = 0; i < c.iters; i++) {
    t_counter++;
    t_init42 = c.id * 1000 + static_cast<int>(i % 1000);
    t_tracker.touches++;
    yield(c);
    if (t_counter != i + 1) fail(c, kTls, "__thread counter changed across sched_yield");
    if (t_init42 != c.id * 1000 + static_cast<int>(i % 1000)) fail(c, kTls, "__thread int changed across sched_yield");
    if (t_tracker.owner != c.id || t_tracker.touches != i + 1)
      fail(c, kTls, "thread_local object changed across sched_yield");
    if (&t_counter != counter_addr || &t_tracker != tracker_addr)
      fail(c, kTls, "TLS address changed across sched_yield");
    sleep_point(c);
    if (t_counter != i + 1 || t_tracker.touches != i + 1) fail(c, kTls, "TLS changed across usleep");
  }
  if (!isalpha('z') || tolower('Q') != 'q') fail(c, kTls, "ctype broken after yields");
}

// ---- exceptions -------------------------------------------------------------

struct UnwindProbe {
  Ctx& c;
  ~UnwindProbe() {
    if (std::uncaught_exceptions() != 1) fail(c, kExceptions, "uncaught_exceptions != 1 during unwinding");
    yield(c);
    yield(c);
    if (std::uncaught_exceptions() != 1)
      fail(c, kExceptions, "uncaught_exceptions changed across yield during unwinding");
  }
};

void exceptions_round(Ctx& c, long i) {
  const int tag = c.id * 1000000 + static_cast<int>(i);
  std::exception_ptr saved;
  try {
    try {
      UnwindProbe probe{c};
      throw tag;
    } catch (int v) {
      if (v != tag) fail(c, kExceptions, "caught the wrong value");
      std::exception_ptr first = std::current_exception();
      saved = first;
      if (!first) fail(c, kExceptions, "no current_exception inside catch");
      if (std::uncaught_exceptions() != 0) fail(c, kExceptions, "uncaught_exceptions != 0 inside catch");
      yield(c);
      yield(c);
      yield(c);
      if (std::current_exception() != first) fail(c, kExceptions, "current_exception changed across yields");
      try {
        throw std::runtime_error("inner");
      } catch (const std::runtime_error& e) {
        yield(c);
        if (strcmp(e.what(), "inner") != 0) fail(c, kExceptions, "nested exception corrupted");
        if (std::current_exception() == first) fail(c, kExceptions, "nested catch sees the outer exception");
      }
      if (std::current_exception() != first) fail(c, kExceptions, "outer exception not restored after nested catch");
      yield(c);
      throw;
    }
  } catch (int v) {
    if (v != tag) fail(c, kExceptions, "rethrow delivered the wrong value");
    yield(c);
    if (!std::current_exception()) fail(c, kExceptions, "no current_exception after rethrow");
  }
  if (std::current_exception() != nullptr) fail(c, kExceptions, "current_exception left set after catch");
  if (std::uncaught_exceptions() != 0) fail(c, kExceptions, "uncaught_exceptions left non-zero");
  try {
    std::rethrow_exception(saved);
  } catch (int v) {
    if (v != tag) fail(c, kExceptions, "rethrow_exception delivered the wrong value");
  }
}

void part_exceptions(Ctx& c) {
  for (long i = 0; i < c.iters; i++) {
    exceptions_round(c, i);
    sleep_point(c);
  }
}

// ---- stdio ------------------------------------------------------------------

long stdio_lines(const Ctx& c) { return c.iters / 4; }

void part_stdio(Ctx& c) {
  for (long line = 0; line < stdio_lines(c); line++) {
    char text[32];
    int n = snprintf(text, sizeof text, "T%02d %05ld\n", c.id, line);
    // A contended flockfile parks the G; the unlocking G's P runs it next,
    // often on another kernel thread: a migration with the lock just taken.
    long before = raw_gettid();
    flockfile(g_file);
    if (raw_gettid() != before) c.migrations++;
    flockfile(g_file);  // recursive: the owner is this thread
    for (int k = 0; k < n; k++) {
      if (putc_unlocked(text[k], g_file) == EOF) fail(c, kStdio, "putc_unlocked failed");
      if (k % 3 == 0) yield(c);
    }
    funlockfile(g_file);
    yield(c);
    funlockfile(g_file);
    sleep_point(c);
  }
}

// Reads the tmpfile back: every line "Tii nnnnn", each thread's lines in order.
long verify_stdio(const std::vector<Ctx>& ctx, long* lines_out) {
  if (fflush(g_file) != 0) return -1;
  rewind(g_file);
  std::vector<long> next(ctx.size(), 0);
  long bad = 0, lines = 0;
  char buf[128];
  while (fgets(buf, sizeof buf, g_file) != nullptr) {
    lines++;
    int id = -1, used = 0;
    long seq = -1;
    if (sscanf(buf, "T%2d %5ld\n%n", &id, &seq, &used) != 2 || used != 10 || buf[10] != '\0' || id < 0 ||
        id >= static_cast<int>(ctx.size()) || seq != next[id]) {
      bad++;
      continue;
    }
    next[id]++;
  }
  for (size_t i = 0; i < ctx.size(); i++)
    if (next[i] != stdio_lines(ctx[i])) bad++;
  *lines_out = lines;
  return bad;
}

// ---- driver -----------------------------------------------------------------

void* thread_main(void* arg) {
  Ctx& c = *static_cast<Ctx*>(arg);
  // Gate: every thread is alive before any records its TLS addresses.
  g_arrived.fetch_add(1);
  while (g_arrived.load() < g_threads) sched_yield();
  long long k = mnp_kernel_threads();
  long long cur = g_kthreads_max.load();
  while (k > cur && !g_kthreads_max.compare_exchange_weak(cur, k)) {
  }
  c.tls_addr = reinterpret_cast<uintptr_t>(&t_counter);
  if (g_run[kErrno]) part_errno(c);
  if (g_run[kTls]) {
    c.thread_local_addr = reinterpret_cast<uintptr_t>(&t_tracker);
    part_tls(c);
  }
  if (g_run[kExceptions]) part_exceptions(c);
  if (g_run[kStdio]) part_stdio(c);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  mnp_report_shim();
  std::string mode = argc > 1 ? argv[1] : "all";
  g_threads = argc > 2 ? atoi(argv[2]) : 16;
  long iters = argc > 3 ? atol(argv[3]) : 2000;
  if (g_threads < 1 || iters < 4) {
    fprintf(stderr, "usage: tls_migrate [all|errno|tls|exceptions|stdio] [threads>=1] [iterations>=4]\n");
    return 2;
  }
  bool known = mode == "all";
  for (int p = 0; p < kParts; p++) {
    g_run[p] = mode == "all" || mode == kPartNames[p];
    known = known || g_run[p];
  }
  if (!known) {
    fprintf(stderr, "tls_migrate: unknown mode '%s'\n", mode.c_str());
    return 2;
  }
  if (g_run[kStdio]) {
    g_file = tmpfile();
    if (g_file == nullptr) {
      perror("tmpfile");
      return 1;
    }
  }

  std::vector<Ctx> ctx(g_threads);
  std::vector<pthread_t> tids(g_threads);
  for (int i = 0; i < g_threads; i++) {
    ctx[i].id = i;
    ctx[i].iters = iters / 2 + (i * iters) / g_threads;
    int rc = pthread_create(&tids[i], nullptr, thread_main, &ctx[i]);
    if (rc != 0) {
      fprintf(stderr, "pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  for (int i = 0; i < g_threads; i++) {
    int rc = pthread_join(tids[i], nullptr);
    if (rc != 0) {
      fprintf(stderr, "pthread_join: %s\n", strerror(rc));
      return 1;
    }
  }

  long failures[kParts] = {};
  long migrations = 0, yields = 0;
  for (const Ctx& c : ctx) {
    migrations += c.migrations;
    yields += c.yields;
    for (int p = 0; p < kParts; p++) failures[p] += c.failures[p];
    if (c.first_failure != nullptr) fprintf(stderr, "thread %d: first failure: %s\n", c.id, c.first_failure);
  }
  bool ok = true;
  if (g_run[kErrno]) {
    printf("errno: threads=%d failures=%ld\n", g_threads, failures[kErrno]);
    ok = ok && failures[kErrno] == 0;
  }
  if (g_run[kTls]) {
    std::set<uintptr_t> tls, tl;
    for (const Ctx& c : ctx) {
      tls.insert(c.tls_addr);
      tl.insert(c.thread_local_addr);
    }
    printf("tls: threads=%d failures=%ld\n", g_threads, failures[kTls]);
    printf("tls: distinct __thread addresses=%zu\n", tls.size());
    printf("tls: distinct thread_local addresses=%zu\n", tl.size());
    printf("tls: thread_local constructors=%d destructors=%d\n", g_tl_ctors.load(), g_tl_dtors.load());
    ok = ok && failures[kTls] == 0 && tls.size() == static_cast<size_t>(g_threads) &&
         tl.size() == static_cast<size_t>(g_threads) && g_tl_ctors.load() == g_threads &&
         g_tl_dtors.load() == g_threads;
  }
  if (g_run[kExceptions]) {
    printf("exceptions: threads=%d failures=%ld\n", g_threads, failures[kExceptions]);
    ok = ok && failures[kExceptions] == 0;
  }
  if (g_run[kStdio]) {
    long expected = 0;
    for (const Ctx& c : ctx) expected += stdio_lines(c);
    long lines = 0;
    long bad = verify_stdio(ctx, &lines);
    printf("stdio: lines=%ld expected=%ld bad=%ld failures=%ld\n", lines, expected, bad, failures[kStdio]);
    ok = ok && bad == 0 && lines == expected && failures[kStdio] == 0;
  }
  mnp_check("kthreads_max", g_kthreads_max.load());
  mnp_check("yields", yields);
  mnp_check("migrations", migrations);
  return ok ? 0 : 1;
}
