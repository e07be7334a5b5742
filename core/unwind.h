// core/unwind.h — libunwind, loaded once for the whole runtime.
//
// Two users: preemption (core/preempt.cpp walks a signalled G's stack to
// find whether it is at a safe point) and the G dump (core/trace.cpp walks
// parked Gs' stacks). Both get the same entry points from unwind_get().
#pragma once

#define UNW_LOCAL_ONLY
#include <libunwind.h>

namespace mnp {

struct Unwind {
  decltype(&_ULx86_64_init_local2) init_local2;
  decltype(&_ULx86_64_step) step;
  decltype(&_ULx86_64_is_signal_frame) is_signal_frame;
  decltype(&_ULx86_64_get_reg) get_reg;
  decltype(&_ULx86_64_get_proc_name) get_proc_name;
  decltype(&_ULx86_64_set_caching_policy) set_caching_policy;
  unw_addr_space_t* local_addr_space;
  const void* base;  // load address of libunwind.so.8 (dladdr's dli_fbase)
};

// Loads libunwind.so.8 on the first call (not from a signal handler);
// null if it is missing or lacks an entry point. Later calls return the
// same answer without loading again.
const Unwind* unwind_get();

}  // namespace mnp
