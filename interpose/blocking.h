// interpose/blocking.h — the one path of every call that may block in the
// kernel on a G's behalf (docs/ARCHITECTURE.md, "Blocking calls",
// Hand-off): the real function (glibc's, or a raw system call) runs with
// the G's P marked as in a system call or handed off, and whatever the call
// is, the bracket is the same:
//
//   1. entersyscall, or entersyscall_block for calls known to block long
//      (the P goes to another M at once), or entersyscall_wait for the
//      poll family's waits of a process with no more Gs than Ps (the P
//      goes idle);
//   2. the call, inside the cleanup buffer that takes the P back if glibc
//      cancels the G out of it (call_cancelable, interpose/cancel.h);
//   3. its errno saved, exitsyscall (which may park the G and resume it on
//      another M), its errno put back: the program sees glibc's errno;
//   4. an EINTR that the runtime's own signal caused (sysmon's kick, a mask
//      refresh, a sigwait kick: syscall_eintr_was_ours) is not the
//      program's: errno goes back to its value on entry and the call is
//      made again, after `retake` (below) if given. So a call that then
//      succeeds leaves errno as natively, where it never saw that EINTR.
//      The program's signals still interrupt it as natively.
//
// A result can carry EINTR when it is an integer -1 with errno EINTR (libc
// style; a raw -EINTR is turned into that by the caller's call). Pointer
// results never do (a NULL from fgets or getpwnam is not retried), and
// none of the calls made here returns EINTR as a pthread-style code (glibc's
// join, lock and wait loops never give it back). A retried call with a
// relative timeout that it does not recompute itself starts the timeout
// again: at most once per such race (musl's __timedwait_cp, the model, has
// absolute deadlines and so no such case).
//
// The calling G is read once, and errno's address once (the G's own TLS,
// which goes with it to whichever M runs it); entersyscall_g and
// exitsyscall_g do the usual case (no nesting, the P not retaken) each in
// one frame, and the bracket itself is inlined into each interposer.
// Measured under callgrind, getc from a memory stream with the process's
// one G: 175 instructions per call more than natively, 244 before the G
// was passed down (enter and exit were three nested calls each, and the
// bracket a function of its own); the library's text got 8 KiB smaller.
//
// Rejected: a bracket per caller (there were six, and only one retried the
// runtime's EINTR or kept errno across every exit path); an out-of-line
// function taking a function pointer (the fast path is entersyscall's few
// stores, an errno load and a compare: inlined, the lambda costs nothing;
// measured under callgrind, getc from a memory stream runs one instruction
// more per call than through the bracket this replaced, pread as many).
#pragma once

#include <cerrno>
#include <cstdint>
#include <type_traits>

#include "core/sched.h"
#include "interpose/cancel.h"

namespace mnp {

// How the P leaves for the call.
enum class Enter : uint8_t {
  kSyscall,  // marked as in a syscall: sysmon retakes it after a round (entersyscall)
  kBlock,    // handed off at once (entersyscall_block)
  kWait,     // idle at once unless work waits (entersyscall_wait; core/sched.h, wait_few)
};

// No retake step: after the runtime's EINTR the call is simply made again.
struct NoRetake {
  int operator()() const { return 0; }
};

// Makes call() as above and returns its result, errno the call's. After
// the runtime's EINTR, retake() runs first: a non-zero result is returned
// instead of making the call again (sigwait: the signal a slot kept for it
// meanwhile, interpose/signal.cpp).
template <Enter kEnter = Enter::kSyscall, typename Call, typename Retake = NoRetake>
__attribute__((always_inline)) inline auto blocking_call(const Call& call, const Retake& retake = {})
    -> decltype(call()) {
  using R = decltype(call());
  G* gp = running_user_g();
  if (!gp) return call();   // no G to mark: nothing to bracket
  int* const err = &errno;  // the G's own errno: its TLS moves with it between Ms
  const int e0 = *err;
  for (;;) {
    // Program handlers run on this G so far: one that runs during the call
    // makes its EINTR the program's (syscall_eintr_was_ours).
    const uint32_t ran = gp->handlers_run;
    if constexpr (kEnter == Enter::kBlock) entersyscall_block_g(gp);
    else if constexpr (kEnter == Enter::kWait) entersyscall_wait_g(gp);
    else entersyscall_g(gp);
    R r = call_cancelable(gp, call);
    int e = *err;
    exitsyscall_g(gp);
    *err = e;
    if constexpr (std::is_pointer_v<R>) {
      return r;
    } else {
      if (MNP_LIKELY(r != static_cast<R>(-1) || e != EINTR) || !syscall_eintr_was_ours(ran)) return r;
      *err = e0;
      if constexpr (!std::is_same_v<Retake, NoRetake>)
        if (R got = retake()) return got;
    }
  }
}

// f(a...) through blocking_call: the spelling for a real function and its
// arguments (interpose/syscall.cpp's list, the process-shared objects).
template <typename F, typename... A>
inline auto handoff(const F& f, A... a) {
  return blocking_call<Enter::kSyscall>([&] { return f(a...); });
}
template <typename F, typename... A>
inline auto handoff_block(const F& f, A... a) {
  return blocking_call<Enter::kBlock>([&] { return f(a...); });
}

}  // namespace mnp
