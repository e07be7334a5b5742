// interpose/cpuclock.cpp — the CPU clocks of threads are the Gs' own
// (docs/ARCHITECTURE.md, "CPU clocks"; core/cpuclock.h).
//
// clock_gettime and clock_getres of CLOCK_THREAD_CPUTIME_ID on a G, and of
// a thread CPU clock id naming a live G (pthread_getcpuclockid's, or one a
// program made from gettid's id), answer from the G's clock. Every other
// clock goes straight to glibc (one compare on the way). getrusage's
// RUSAGE_THREAD on a G reports the G's CPU time; the kernel knows no
// user/system split for it, so the G's time is split in the proportion the
// kernel reports for the M it runs on; the other fields are the M's.
#include <errno.h>
#include <sys/resource.h>
#include <time.h>

#include "core/cpuclock.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "core/tcb.h"
#include "interpose/cpuclock.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

struct timespec ts_of(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}
}  // namespace

namespace mnp {

// A thread CPU clock id is MAKE_THREAD_CPUCLOCK(tid, which): ~tid << 3 | 4
// (per thread) | which (PROF 0, VIRT 1, SCHED 2; 3 is no clock), which
// holds a tid below 2^28 only. G ids (kFakeTidBase + n, n below
// kFakeTidSpan, core/tcb.h) do not fit, so a G's id is written as
// kClockGBase + n, above any pid_max (2^22) and below 2^28; the main G's id
// is the pid and is written as itself.
constexpr uint32_t kClockGBase = 1u << 22;
static_assert(kClockGBase + kFakeTidSpan == 1u << 28, "every G id has a clock id of its own");

clockid_t g_clock_id(uint32_t tid) {
  uint32_t x = tid >= kFakeTidBase ? kClockGBase + (tid - kFakeTidBase) : tid;
  return static_cast<clockid_t>((~x << 3) | 6);  // CPUCLOCK_SCHED
}

int g_clock_tid(clockid_t clk) {
  if (clk == CLOCK_THREAD_CPUTIME_ID) return 0;
  if (clk >= 0 || !(clk & 4) || (clk & 3) == 3) return -1;
  auto x = static_cast<uint32_t>(~(clk >> 3));
  return static_cast<int>(x >= kClockGBase ? kFakeTidBase + (x - kClockGBase) : x);
}

bool g_clock_read(clockid_t clk, int64_t* ns) {
  if (!runtime_up) return false;
  int tid = g_clock_tid(clk);
  if (tid < 0) return false;
  G* self = get_user_g();
  if (tid == 0 || (self && static_cast<uint32_t>(tid) == self->fake_tid)) {
    if (!self) return false;
    *ns = g_cpu_ns(self);
    return true;
  }
  // VIRT (user time only) is answered with the whole CPU time too: the
  // split is not kept per G.
  return gmem_with_tid(static_cast<uint32_t>(tid), [&](G* gp) { *ns = g_cpu_ns(gp); });
}

}  // namespace mnp

extern "C" {

MNP_EXPORT int clock_gettime(clockid_t clk, struct timespec* ts) noexcept {
  int64_t ns;
  if (MNP_LIKELY(clk >= 0 && clk != CLOCK_THREAD_CPUTIME_ID) || !g_clock_read(clk, &ns))
    return real_clock_gettime(clk, ts);
  *ts = ts_of(ns);
  return 0;
}

MNP_EXPORT int clock_getres(clockid_t clk, struct timespec* res) noexcept {
  int64_t ns;
  if (MNP_LIKELY(clk >= 0) || !g_clock_read(clk, &ns)) return real_clock_getres(clk, res);
  if (res) *res = {0, 1};  // the kernel's resolution for CPU clocks
  return 0;
}

MNP_EXPORT int getrusage(int who, struct rusage* ru) noexcept {
  int r = real_getrusage(who, ru);
  G* g = running_user_g();
  if (r != 0 || who != RUSAGE_THREAD || !g) return r;
  int64_t total = g_cpu_ns(g);
  int64_t mu = ru->ru_utime.tv_sec * 1000000LL + ru->ru_utime.tv_usec;
  int64_t ms = ru->ru_stime.tv_sec * 1000000LL + ru->ru_stime.tv_usec;
  // The kernel's user/system split applied to the G's time. In long double
  // (64-bit mantissa: exact for any realistic time) rather than __int128,
  // whose division is a libgcc_s function (interpose/unwind_link.cpp).
  int64_t sys = mu + ms > 0 ? static_cast<int64_t>(static_cast<long double>(total) * ms / (mu + ms)) : 0;
  int64_t usr_us = (total - sys) / 1000, sys_us = sys / 1000;
  ru->ru_utime = {static_cast<time_t>(usr_us / 1000000), static_cast<suseconds_t>(usr_us % 1000000)};
  ru->ru_stime = {static_cast<time_t>(sys_us / 1000000), static_cast<suseconds_t>(sys_us % 1000000)};
  return 0;
}

}  // extern "C"
