// arch/x86_64/context.cpp — context creation and FS-base helpers.
#include "arch/x86_64/context.h"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#if MNP_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include "arch/x86_64/machine.h"
#include "core/base.h"

namespace mnp {

extern "C" {
MNP_HIDDEN MNP_START_DATA int mnp_arch_use_wrfsbase = 0;
}

namespace {
constexpr unsigned long kHwcap2Fsgsbase = 1UL << 1;

struct Frame {  // mirrors the table at the top of context.S
  uint32_t mxcsr;
  uint16_t fpucw;
  uint16_t pad;
  uint64_t r15, r14, r13, r12, rbx, rbp;
  uint64_t ret;
};
static_assert(sizeof(Frame) == MNP_CTX_FRAME);
static_assert(offsetof(Frame, r13) == 24 && offsetof(Frame, r12) == 32);
}  // namespace

MNP_STARTUP void arch_init() { mnp_arch_use_wrfsbase = (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) ? 1 : 0; }

#if MNP_ASAN
namespace {
// The context a same-TCB switch left, so that the arriving side can record
// its bounds; set and cleared on one TCB (context.h, "Sanitizers").
thread_local Context* t_san_left = nullptr;

// On the arriving side of a switch: ends a switch announced on this TCB.
void san_arrived(void* fake) {
  Context* left = t_san_left;
  if (!left) return;  // the switch changed the TCB: nothing was announced
  t_san_left = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(fake, &left->san_lo, &size);
  left->san_size = size;
}

// First code of a fresh context, in place of its entry.
void san_entry(void* a) {
  auto* ctx = static_cast<Context*>(a);
  san_arrived(nullptr);
  ctx->san_entry(ctx->san_arg);
  __builtin_unreachable();
}
}  // namespace

extern "C" void mnp_ctx_switch(Context* from, const Context* to, CtxFn fn, void* arg) {
  if (to->fs != arch_get_fs()) {
    mnp_ctx_switch_raw(from, to, fn, arg);
    return;
  }
  __sanitizer_start_switch_fiber(&from->san_fake, to->san_lo, to->san_size);
  t_san_left = from;
  mnp_ctx_switch_raw(from, to, fn, arg);
  san_arrived(from->san_fake);
}
#endif

void ctx_make(Context* ctx, void* stack_lo, void* stack_top, uintptr_t fs, void (*entry)(void*), void* arg) {
#if MNP_ASAN
  size_t size = static_cast<size_t>(static_cast<char*>(stack_top) - static_cast<char*>(stack_lo));
  __asan_unpoison_memory_region(stack_lo, size);
  ctx->san_lo = stack_lo;
  ctx->san_size = size;
  ctx->san_fake = nullptr;
  ctx->san_entry = entry;
  ctx->san_arg = arg;
  entry = san_entry;
  arg = ctx;
#else
  (void)stack_lo;
#endif
  uintptr_t top = reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t{15};
  // After mnp_ctx_switch pops the frame, rsp = sp + 64 must be 16-aligned
  // for mnp_ctx_entry's call, so sp itself is 16-aligned.
  uintptr_t sp = top - 16 - MNP_CTX_FRAME;
  auto* f = reinterpret_cast<Frame*>(sp);
  std::memset(f, 0, sizeof *f);
  asm volatile("stmxcsr %0" : "=m"(f->mxcsr));
  asm volatile("fnstcw %0" : "=m"(f->fpucw));
  f->r12 = reinterpret_cast<uint64_t>(arg);
  f->r13 = reinterpret_cast<uint64_t>(entry);
  f->ret = reinterpret_cast<uint64_t>(&mnp_ctx_entry);
  ctx->sp = sp;
  ctx->fs = fs;
}

void ctx_saved_ucontext(const Context* ctx, ucontext_t* uc) {
  const auto* f = reinterpret_cast<const Frame*>(ctx->sp);
  std::memset(uc, 0, sizeof *uc);
  greg_t* r = uc->uc_mcontext.gregs;
  r[REG_R15] = static_cast<greg_t>(f->r15);
  r[REG_R14] = static_cast<greg_t>(f->r14);
  r[REG_R13] = static_cast<greg_t>(f->r13);
  r[REG_R12] = static_cast<greg_t>(f->r12);
  r[REG_RBX] = static_cast<greg_t>(f->rbx);
  r[REG_RBP] = static_cast<greg_t>(f->rbp);
  r[REG_RIP] = static_cast<greg_t>(f->ret);
  r[REG_RSP] = static_cast<greg_t>(ctx->sp + MNP_CTX_FRAME);  // as the switch's ret leaves it
}

void arch_set_fs(uintptr_t fs) {
  if (mnp_arch_use_wrfsbase) {
    asm volatile("wrfsbase %0" ::"r"(fs) : "memory");
  } else {
    raw_syscall(SYS_arch_prctl, ARCH_SET_FS, static_cast<long>(fs));
  }
}

}  // namespace mnp
