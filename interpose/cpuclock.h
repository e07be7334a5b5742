// interpose/cpuclock.h — thread CPU clock ids that name Gs (cpuclock.cpp).
#pragma once

#include <time.h>

#include <cstdint>

namespace mnp {

// The CPU clock id of the thread with id tid (pthread_getcpuclockid).
clockid_t g_clock_id(uint32_t tid);
// The thread a CPU clock id names: 0 for the caller (CLOCK_THREAD_CPUTIME_ID
// or tid 0), -1 if clk is no thread CPU clock.
int g_clock_tid(clockid_t clk);
// clk's value in ns when it is the calling G's CPU clock or a live G's;
// false when the clock is not a G's (glibc and the kernel answer it).
bool g_clock_read(clockid_t clk, int64_t* ns);

}  // namespace mnp
