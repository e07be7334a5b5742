// arch/x86_64/context.cpp — context creation and FS-base helpers.
#include "arch/x86_64/context.h"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "arch/x86_64/machine.h"

namespace mnp {

extern "C" {
__attribute__((visibility("hidden"))) int mnp_arch_use_wrfsbase = 0;
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

void arch_init() {
  mnp_arch_use_wrfsbase = (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) ? 1 : 0;
}

void ctx_make(Context* ctx, void* stack_top, uintptr_t fs, void (*entry)(void*), void* arg) {
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

void arch_set_fs(uintptr_t fs) {
  if (mnp_arch_use_wrfsbase) {
    asm volatile("wrfsbase %0" ::"r"(fs) : "memory");
  } else {
    raw_syscall(SYS_arch_prctl, ARCH_SET_FS, static_cast<long>(fs));
  }
}

}  // namespace mnp
