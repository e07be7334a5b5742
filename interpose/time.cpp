// interpose/time.cpp — sleeps park the G on a timer (docs/ARCHITECTURE.md,
// "Blocking calls", class park).
//
// nanosleep, clock_nanosleep, usleep and sleep from a G never block the M.
// Deadlines are CLOCK_MONOTONIC internally; an absolute sleep on another
// clock is converted once, reading that clock first, so that it never ends
// before the time it names (timer_deadline_abs, core/timer.h; a later change
// of the wall clock does not move it).
// A handler of the program's ends a sleep early with EINTR and the time left
// in *rem, as natively, for the G the signal was meant for (the netpoller
// picks it: netpoll.h). Callers that are not Gs, and clocks other than
// REALTIME/MONOTONIC/BOOTTIME/TAI, go to the kernel.
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/sched.h"
#include "core/timer.h"
#include "interpose/real.h"

using namespace mnp;

namespace {
using NanosleepFn = int(const struct timespec*, struct timespec*);
using ClockNanosleepFn = int(clockid_t, int, const struct timespec*, struct timespec*);
constinit Real<NanosleepFn> real_nanosleep{"nanosleep", "GLIBC_2.2.5"};
constinit Real<ClockNanosleepFn> real_clock_nanosleep{"clock_nanosleep", "GLIBC_2.17"};

bool parkable_clock(clockid_t c) {
  return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME || c == CLOCK_TAI;
}

int64_t ts_ns(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }

// Monotonic deadline for a relative or absolute time on clock c (an
// absolute one: core/timer.h, never before the time c names).
int64_t deadline_of(clockid_t c, int flags, const struct timespec* req) {
  if (flags & TIMER_ABSTIME) return timer_deadline_abs(c, req);
  int64_t now_mono = nanotime();
  if (req->tv_sec > (kNever - now_mono) / 1000000000 - 1) return kNever;
  return now_mono + ts_ns(*req);
}

// 0 or an errno value (EINVAL, EINTR); the G sleeps until the deadline or
// a signal's handler.
int g_sleep(clockid_t c, int flags, const struct timespec* req, struct timespec* rem) {
  if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) return EINVAL;
  int64_t deadline = deadline_of(c, flags, req);
  int r;
  while ((r = netpoll_sleep(deadline)) == ECANCELED) cancel_point();  // pthread_cancel unwinds from there
  if (r == EINTR) {
    if (rem && !(flags & TIMER_ABSTIME)) {
      int64_t left = deadline == kNever ? ts_ns(*req) : deadline - nanotime();
      if (left < 0) left = 0;
      *rem = {static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    }
    return EINTR;
  }
  if (rem && !(flags & TIMER_ABSTIME)) *rem = {0, 0};
  return 0;
}
}  // namespace

extern "C" {

MNP_EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec* req, struct timespec* rem) noexcept {
  if (!runtime_up || !get_user_g() || !parkable_clock(c)) return real_clock_nanosleep(c, flags, req, rem);
  return g_sleep(c, flags, req, rem);
}

MNP_EXPORT int nanosleep(const struct timespec* req, struct timespec* rem) noexcept {
  if (!runtime_up || !get_user_g()) return real_nanosleep(req, rem);
  int r = g_sleep(CLOCK_MONOTONIC, 0, req, rem);
  if (r) {
    errno = r;
    return -1;
  }
  return 0;
}

MNP_EXPORT int usleep(useconds_t us) noexcept {
  struct timespec ts = {static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  return nanosleep(&ts, nullptr);
}

MNP_EXPORT unsigned int sleep(unsigned int secs) noexcept {
  struct timespec ts = {static_cast<time_t>(secs), 0}, rem = {0, 0};
  // glibc 2.36 returns the whole seconds left (measured: 1 for 1.95 s).
  if (nanosleep(&ts, &rem) != 0) return static_cast<unsigned>(rem.tv_sec);
  return 0;
}

}  // extern "C"
