// core/waitreason.h — why a G waits: shown by MNP_DEBUG=scheddetail and
// the G dump (core/trace.cpp); set by park's caller (sema_wait's callers
// name the object they wait for).
#pragma once

#include <cstdint>

namespace mnp {

enum WaitReason : uint32_t {
  kWaitNone,
  kWaitJoin,
  kWaitSleep,
  kWaitMutex,
  kWaitCond,
  kWaitRwlock,
  kWaitBarrier,
  kWaitSema,
  kWaitFutex,
  kWaitNet,         // fd readiness (netpoller)
  kWaitForever,     // main G after pthread_exit
  kWaitSchedStart,  // pthread_create: a real-time G applying its policy (ksched.h)
};

}  // namespace mnp
