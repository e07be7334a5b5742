// tests/unit/context_test.cpp — mnp_ctx_switch: callee-saved registers,
// MXCSR and x87 control word kept per context, 16-byte stack alignment at
// entry and in on-top calls, FS base switched and restored, and on-top
// callbacks running on the target stack before it resumes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>

#include "arch/x86_64/context.h"
#include "core/base.h"

using namespace mnp;

namespace {

struct Fixture {
  Context main_ctx{};
  Context co{};
  void* stack = nullptr;
  size_t size = 256 * 1024;
  Fixture() {
    arch_init();
    stack = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    main_ctx.fs = arch_get_fs();
  }
  ~Fixture() {
    san_unpoison(stack, size);  // co_body's frames never returned
    munmap(stack, size);
  }
  void* top() { return static_cast<char*>(stack) + size; }
};

Fixture* fx;
uintptr_t entry_rsp_mod16 = 99;
uint32_t co_mxcsr_seen = 0;
int co_counter = 0;

uint32_t get_mxcsr() {
  uint32_t v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}
void set_mxcsr(uint32_t v) { asm volatile("ldmxcsr %0" ::"m"(v)); }
uint16_t get_fpucw() {
  uint16_t v;
  asm volatile("fnstcw %0" : "=m"(v));
  return v;
}
void set_fpucw(uint16_t v) { asm volatile("fldcw %0" ::"m"(v)); }

void co_body(void*) {
  // With frame pointers, rbp = entry rsp - 8, which the ABI wants 16-aligned.
  entry_rsp_mod16 = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) % 16;
  co_mxcsr_seen = get_mxcsr();
  set_mxcsr(get_mxcsr() | (3u << 13));  // round toward zero, this context only
  for (;;) {
    co_counter++;
    mnp_ctx_switch(&fx->co, &fx->main_ctx, nullptr, nullptr);
  }
}

}  // namespace

TEST(Context, CalleeSavedRegistersSurviveSwitches) {
  Fixture f;
  fx = &f;
  ctx_make(&f.co, f.stack, f.top(), f.main_ctx.fs, co_body, nullptr);
  // Values live in callee-saved registers across the calls (the compiler
  // keeps them there under register pressure); any loss breaks the sum.
  volatile uint64_t seed = 7;
  uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 11, e = seed * 13, g = seed * 17;
  for (int i = 0; i < 1000; i++) {
    mnp_ctx_switch(&f.main_ctx, &f.co, nullptr, nullptr);
    a += b;
    b ^= c;
    c += d;
    d ^= e;
    e += g;
    g ^= a;
  }
  uint64_t a2 = seed, b2 = seed * 3, c2 = seed * 5, d2 = seed * 11, e2 = seed * 13, g2 = seed * 17;
  for (int i = 0; i < 1000; i++) {
    a2 += b2;
    b2 ^= c2;
    c2 += d2;
    d2 ^= e2;
    e2 += g2;
    g2 ^= a2;
  }
  EXPECT_EQ(a, a2);
  EXPECT_EQ(g, g2);
  EXPECT_EQ(co_counter, 1000);
  EXPECT_EQ(entry_rsp_mod16, 0u);
}

TEST(Context, FloatingPointControlIsPerContext) {
  Fixture f;
  fx = &f;
  uint32_t mine = get_mxcsr();
  uint16_t cw = get_fpucw();
  ctx_make(&f.co, f.stack, f.top(), f.main_ctx.fs, co_body, nullptr);
  mnp_ctx_switch(&f.main_ctx, &f.co, nullptr, nullptr);
  EXPECT_EQ(co_mxcsr_seen, mine) << "a new context inherits its creator's MXCSR";
  EXPECT_EQ(get_mxcsr(), mine) << "the coroutine's rounding change leaked into us";
  set_fpucw(static_cast<uint16_t>(cw & ~0x300));  // x87 single precision, here only
  mnp_ctx_switch(&f.main_ctx, &f.co, nullptr, nullptr);
  EXPECT_EQ(get_fpucw(), static_cast<uint16_t>(cw & ~0x300));
  set_fpucw(cw);
}

namespace {
uintptr_t fs_seen_in_co = 0;
uintptr_t ontop_rsp_mod16 = 99;
bool ontop_on_target_stack = false;
void fs_body(void*) {
  uintptr_t v;
  asm volatile("mov %%fs:0, %0" : "=r"(v));  // header.tcb of the fake TCB
  fs_seen_in_co = v;
  mnp_ctx_switch(&fx->co, &fx->main_ctx, nullptr, nullptr);
  __builtin_trap();
}
}  // namespace

TEST(Context, FsBaseSwitchedAndRestored) {
  Fixture f;
  fx = &f;
  alignas(64) static uintptr_t fake_tcb[64];
  fake_tcb[0] = reinterpret_cast<uintptr_t>(fake_tcb);
  uintptr_t before = arch_get_fs();
  ctx_make(&f.co, f.stack, f.top(), reinterpret_cast<uintptr_t>(fake_tcb), fs_body, nullptr);
  mnp_ctx_switch(&f.main_ctx, &f.co, nullptr, nullptr);
  EXPECT_EQ(fs_seen_in_co, reinterpret_cast<uintptr_t>(fake_tcb));
  EXPECT_EQ(arch_get_fs(), before);
  errno = 0;  // TLS still usable here
  EXPECT_EQ(errno, 0);
}

// The on-top call runs after the switch, on the target's stack, with the
// ABI's alignment: that is where park/yield publish the G they left.
TEST(Context, OnTopCallRunsOnTargetStackAligned) {
  Fixture f;
  fx = &f;
  ctx_make(&f.co, f.stack, f.top(), f.main_ctx.fs, co_body, nullptr);
  mnp_ctx_switch(&f.main_ctx, &f.co, nullptr, nullptr);  // co now waits in its loop
  ontop_rsp_mod16 = 99;
  ontop_on_target_stack = false;
  mnp_ctx_switch(
      &f.main_ctx, &f.co,
      [](void* a) {
        uintptr_t rsp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
        ontop_rsp_mod16 = rsp % 16;
        auto* fx2 = static_cast<Fixture*>(a);
        uintptr_t lo = reinterpret_cast<uintptr_t>(fx2->stack), hi = lo + fx2->size;
        ontop_on_target_stack = rsp >= lo && rsp < hi;
      },
      &f);
  EXPECT_EQ(ontop_rsp_mod16, 0u);
  EXPECT_TRUE(ontop_on_target_stack);
}
