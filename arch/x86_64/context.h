// arch/x86_64/context.h — saved execution context of a G or g0, and the
// switch primitive.
//
// A Context is two words: the saved stack pointer (everything else lives in
// a frame on the stack itself, see context.S) and the FS base (the TCB of the
// glibc thread this context runs as). The switch loads the target's FS base
// only when it differs from the one being left, with wrfsbase when the CPU and
// kernel allow it (AT_HWCAP2 & HWCAP2_FSGSBASE) and arch_prctl otherwise.
//
// mnp_ctx_switch(from, to, fn, arg) saves the current context into *from,
// switches to *to and, if fn is non-null, calls fn(arg) on the target's stack
// with the target's FS base *before* the target resumes. This "on top" call is
// how a G publishes itself (on a run queue, in a wait list) only after its
// registers are saved: publishing earlier would let another M resume it on a
// stack we are still using.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>

#include "arch/x86_64/context_offsets.h"

namespace mnp {

struct Context {
  uintptr_t sp = 0;  // saved stack pointer; 16-byte aligned (frame below)
  uintptr_t fs = 0;  // FS base (glibc TCB) this context runs with
#if MNP_ASAN
  // AddressSanitizer's view of the stack (see "Sanitizers" below): bounds
  // set by ctx_make or learnt when the context is left, and the fake stack
  // ASan hands back when the context resumes.
  const void* san_lo = nullptr;
  size_t san_size = 0;
  void* san_fake = nullptr;
  void (*san_entry)(void*) = nullptr;
  void* san_arg = nullptr;
#endif
};

// Offsets used by context.S, defined once in context_offsets.h.

static_assert(offsetof(Context, sp) == MNP_CTX_SP);
static_assert(offsetof(Context, fs) == MNP_CTX_FS);

using CtxFn = void (*)(void*);

// Sanitizers (meson -Dsanitize=address,...; MNP_ASAN is then 1). ASan keeps
// its per-thread state (stack bounds, fake stack, a switch in progress) in
// thread-local storage, which is the TCB the FS base points at. A switch
// that changes the FS base therefore changes ASan's thread along with the
// stack, and needs no announcement; here every G, every g0 and the probe
// have a TCB of their own, so all the scheduler's switches are of this
// kind. A switch that keeps the FS base (a second stack on one TCB, as the
// unit tests do) is announced with __sanitizer_start_switch_fiber before
// and __sanitizer_finish_switch_fiber after, on the arriving side
// (mnp_ctx_switch's return, or a fresh context's first instruction).
// Announcing a switch that changes the TCB would start a switch on one ASan
// thread and finish it on another, which ASan rejects. ctx_make unpoisons
// the stack it prepares, since frames of a G that never returned (it
// exited by switching away) leave their red zones behind.
// Without MNP_ASAN, mnp_ctx_switch is context.S's own code and costs
// nothing more.

extern "C" {
// Nonzero when wrfsbase may be used (set once by arch_init()).
extern int mnp_arch_use_wrfsbase;
void mnp_ctx_switch(Context* from, const Context* to, CtxFn fn, void* arg);
#if MNP_ASAN
void mnp_ctx_switch_raw(Context* from, const Context* to, CtxFn fn, void* arg);  // context.S
#endif
// First instruction run by a fresh context: calls r13(r12) and never returns.
void mnp_ctx_entry();
// Calls fn(arg) with the stack pointer at sp (16-byte aligned, below any
// live data) and returns on the caller's stack.
void mnp_call_on_stack(uintptr_t sp, CtxFn fn, void* arg);
}

// Detects FSGSBASE support; call once before any switch.
void arch_init();

// Prepares ctx so that switching to it runs entry(arg) on the stack
// [stack_lo, stack_top), with FS base fs. The floating-point
// control state (MXCSR, x87 control word) is copied from the caller, as a new
// kernel thread inherits it.
void ctx_make(Context* ctx, void* stack_lo, void* stack_top, uintptr_t fs, void (*entry)(void*), void* arg);

// The registers the switch saved for ctx, which is not running, as a
// ucontext for a stack walk (libunwind): the PC it resumes at, its stack
// pointer and the callee-saved registers; everything else zero.
void ctx_saved_ucontext(const Context* ctx, ucontext_t* uc);

// Current FS base (the running thread's TCB).
inline uintptr_t arch_get_fs() {
  uintptr_t v;
  asm volatile("mov %%fs:0, %0" : "=r"(v));  // tcbhead_t::tcb is the TCB itself
  return v;
}

// A pointer-sized field of the running thread's TCB at a constant offset
// (core/tcb.h's tcbo). The store is a compiler barrier: what the field will
// point at is written before it is published.
template <size_t kOffset>
inline void* arch_tcb_load_ptr() {
  void* v;
  asm volatile("mov %%fs:%c1, %0" : "=r"(v) : "i"(kOffset));
  return v;
}
// An int field of it (the thread id, tcbo::kTid).
template <size_t kOffset>
inline int arch_tcb_load_int() {
  int v;
  asm volatile("mov %%fs:%c1, %0" : "=r"(v) : "i"(kOffset));
  return v;
}
template <size_t kOffset>
inline void arch_tcb_store_ptr(void* v) {
  asm volatile("mov %0, %%fs:%c1" : : "r"(v), "i"(kOffset) : "memory");
}

// Writes FS base directly (used only outside of any G, e.g. in handlers).
void arch_set_fs(uintptr_t fs);

}  // namespace mnp
