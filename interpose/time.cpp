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
// REALTIME/MONOTONIC/BOOTTIME/TAI, go to the kernel, except the CPU clock of
// another G (g_cpu_sleep).
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/sched.h"
#include "core/timer.h"
#include "interpose/blocking.h"
#include "interpose/cpuclock.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

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

// The process's only G on its only M (core/sched.h, wait_direct): the real
// sleep in syscall state, as the poll family's direct path does. Parked, the
// sleep started sysmon and an M to wait for its timer: a process with one
// thread had three kernel threads after its first usleep, and programs that
// check they are single-threaded before they fork (Chromium's zygote) saw
// them. The runtime's EINTR (sysmon retaking the P) sleeps on.
int direct_sleep(G* g, clockid_t c, int flags, const struct timespec* req, struct timespec* rem) {
  struct timespec want = *req, left = {0, 0};
  for (;;) {
    uint32_t ran = g->handlers_run;
    int r = direct_call(g, [&] { return handoff(real_clock_nanosleep.get(), c, flags, &want, &left); });
    if (r != EINTR || !syscall_eintr_was_ours(ran)) {
      if (r == EINTR && rem && !(flags & TIMER_ABSTIME)) *rem = left;
      return r;
    }
    if (!(flags & TIMER_ABSTIME)) want = left;
  }
}

// 0 or an errno value (EINVAL, EINTR); the G sleeps until the deadline or
// a signal's handler.
int g_sleep(clockid_t c, int flags, const struct timespec* req, struct timespec* rem) {
  if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) return EINVAL;
  if (G* g = get_user_g(); g && wait_direct(g)) return direct_sleep(g, c, flags, req, rem);
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
  return 0;  // the kernel writes *rem only when interrupted
}
struct timespec ts_of(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// A sleep on the CPU clock of another live G (interpose/cpuclock.h): until
// that G has used the time asked for, as the kernel sleeps on another
// thread's clock. The G cannot use CPU time faster than wall time passes, so
// the caller sleeps what is left on the monotonic clock and looks again.
// -1: not a G's clock (the kernel answers); else 0 or an errno value.
int g_cpu_sleep(clockid_t c, int flags, const struct timespec* req, struct timespec* rem) {
  int tid = g_clock_tid(c);
  if (tid <= 0) return -1;
  G* self = get_user_g();
  int64_t cur;
  if (self && static_cast<uint32_t>(tid) == self->fake_tid) return EINVAL;  // its own clock, as the kernel says
  if (!g_clock_read(c, &cur)) return -1;
  if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) return EINVAL;
  bool abs = flags & TIMER_ABSTIME;
  int64_t target = abs ? ts_ns(*req) : cur + ts_ns(*req);
  while (cur < target) {
    int64_t left = target - cur;
    int r = 0;
    if (self) {
      while ((r = netpoll_sleep(nanotime() + left)) == ECANCELED) cancel_point();
    } else {
      struct timespec t = ts_of(left);
      if (real_nanosleep(&t, nullptr) != 0) r = errno;
    }
    if (r == EINTR) {
      if (rem && !abs) *rem = ts_of(left);
      return EINTR;
    }
    if (!g_clock_read(c, &cur)) break;  // the thread ended
  }
  if (rem && !abs) *rem = {0, 0};
  return 0;
}
}  // namespace

extern "C" {

MNP_EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec* req, struct timespec* rem) {
  if (MNP_UNLIKELY(c < 0) && runtime_up) {
    int r = g_cpu_sleep(c, flags, req, rem);
    if (r >= 0) return r;
  }
  if (!runtime_up || !get_user_g() || !parkable_clock(c)) return real_clock_nanosleep(c, flags, req, rem);
  return g_sleep(c, flags, req, rem);
}

MNP_EXPORT int nanosleep(const struct timespec* req, struct timespec* rem) {
  if (!runtime_up || !get_user_g()) return real_nanosleep(req, rem);
  int r = g_sleep(CLOCK_MONOTONIC, 0, req, rem);
  if (r) {
    errno = r;
    return -1;
  }
  return 0;
}

MNP_EXPORT int usleep(useconds_t us) {
  struct timespec ts = {static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  return nanosleep(&ts, nullptr);
}

MNP_EXPORT unsigned int sleep(unsigned int secs) {
  struct timespec ts = {static_cast<time_t>(secs), 0}, rem = {0, 0};
  // glibc 2.36 returns the whole seconds left (measured: 1 for 1.95 s).
  if (nanosleep(&ts, &rem) != 0) return static_cast<unsigned>(rem.tv_sec);
  return 0;
}

}  // extern "C"
