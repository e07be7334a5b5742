// core/preempt.h — asynchronous preemption (docs/ARCHITECTURE.md,
// "Scheduling").
#pragma once

#include <ucontext.h>

#include <cstdint>

extern "C" void mnp_ret_hook_stub();

namespace mnp {

struct G;

// Base frames of every G stack (the G trampoline, the main G's entry) live in
// this section; a stack walk that reaches them has seen the whole G.
#define MNP_GBASE __attribute__((section("mnp_gbase"), noinline))

// Reads MNP_PREEMPT (at start-up); nothing is loaded yet: a process whose
// only thread is main never needs preemption.
void preempt_init();
// On the first pthread_create of a G, on the creating thread (an ordinary
// call context, where dlopen may run): loads libunwind and records the code
// ranges where a G must never be stopped (libc, ld.so, libstdc++, libgcc,
// the allocator, libunwind and mnpthread itself). Later calls return at once.
void preempt_setup();
// addr lies in the libunwind this module loaded (its pipe2 call: core/rtfd.h).
bool preempt_in_unwinder(const void* addr);
// The program reused the fd of libunwind's pipe (core/rtfd.h): asynchronous
// preemption goes off for good.
void preempt_unwinder_lost();
bool preempt_enabled();
// A seccomp filter was seen (core/base.h; sysmon asks before each
// asynchronous preemption): asynchronous preemption goes off for good
// (true), because libunwind's walk makes system calls (mincore, a pipe
// write) such a filter may trap, in a handler that blocks SIGSYS. Slices
// still end at a call's return (preempt_check) and at every park. No
// system call here: it runs in the poke handler.
bool preempt_off_under_seccomp();
// What a walk of the G's stack from the signal context (libunwind) says:
// kSafe, the interrupted PC and every frame are outside those ranges (a
// caller's frame may be inside: a call-out, preempt.cpp); kUnsafe, one is
// inside, or the walk could not vouch for every caller (the stack ended,
// or 65,536 frames, without the G's base); kUnreadable, the PC is outside
// but the walk failed at a frame no unwinder can read (a JIT's code).
// kAtReturn: the PC is in libc just past a system call libc made, and
// the function's caller (program code) and every frame further up are as
// for kSafe: the G may stop where that function returns (ret_hook_install).
enum class Walk { kSafe, kUnsafe, kUnreadable, kAtReturn };
// Where a libc function's return address lies on the G's stack, and what
// it is (kAtReturn).
struct RetHook {
  uintptr_t* slot = nullptr;
  uintptr_t ra = 0;
};
// hook: where to put what kAtReturn needs; null: kAtReturn is never
// answered (a PC in libc is kUnsafe).
Walk preempt_walk(const ucontext_t* uc, RetHook* hook);
// Preemption at a libc function's return (docs/ARCHITECTURE.md, "Time
// slice and preemption"): the function's return address on the stack is
// replaced with mnp_ret_hook_stub's, which yields if the G's mark still
// stands (preempt_check) and goes on to the caller. False, and nothing
// changed, when another such return is still to come on g's stack or the
// stack pointer is off g's own stack. From the poke handler, on g's M.
bool ret_hook_install(G* g, const RetHook& hook, const ucontext_t* uc);
// Before code that may unwind from the context uc of g (a program's
// handler, an asynchronous cancellation): a hook still pending there gets
// its function's own return address back, so an unwinder never meets the
// stub's (whose frame would end the unwind). On g's own thread.
void ret_hook_drop(G* g, const ucontext_t* uc);
// Called from the signal handler at a safe point: the G goes to the back of
// the global run queue and the M runs something else.
void preempt_switch();
// Cooperative check where an interposed call returns to the program (a
// wrapped call's exitsyscall, a netpoller call that completed at once, the
// end of pthread_create): the running G yields if sysmon ended its slice
// (a real-time G goes behind the ordinary Gs), as the kernel preempts a
// thread on its return from a system call. Not in a program signal
// handler, inside a wrapped call, where runtime code up the stack holds the
// M, while signals for the G go to its M, or while a call's signal mask is
// the G's (docs/ARCHITECTURE.md, "Preemption at a call's return").
void preempt_check();

}  // namespace mnp
