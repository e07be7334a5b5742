// core/trace.h — scheduler trace lines and the G dump (docs/ARCHITECTURE.md,
// "Debugging").
#pragma once

#include <cstdint>

namespace mnp {

// Value carried by sigqueue() with the runtime's signal (MNP_SIGNAL, SIGURG
// by default) to request a dump of every G: "MNPD".
constexpr int kDumpRequestValue = 0x4d4e5044;

// Parses MNP_DEBUG once: schedtrace=MS, scheddetail=1. Unknown keys or bad
// values print one line and are ignored.
void trace_init();
// Called by sysmon every round; prints what is due.
void trace_tick(int64_t now);
// Asks sysmon to dump every G at its next round (async-signal-safe).
void trace_request_dump();
// The sysmon period must not exceed this while tracing (ns), or kNever.
int64_t trace_period_ns();
// Prints every G with its state, wait reason, time waiting and stack.
void dump_all_gs();

}  // namespace mnp
