// tests/unit/tcb_test.cpp — a G's glibc TCB: layout validation passes on
// this glibc, the header is initialised as docs/ARCHITECTURE.md ("TLS and
// glibc internals") lists, code running on it has its own errno and
// __thread values, locale tables work, and reuse re-initialises TLS while
// keeping the DTV.
#include <gtest/gtest.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "arch/x86_64/context.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "core/tcb.h"

using namespace mnp;

namespace {
__thread int tls_counter = 42;
struct Probe {
  Context back;
  G* g;
  int initial_tls;
  int alpha;
  int* errno_addr;
  int* tls_addr;
};
void body(void* a) {
  auto* p = static_cast<Probe*>(a);
  tcb_thread_start_on_current();
  p->initial_tls = tls_counter;
  tls_counter = 1000;
  p->alpha = isalpha('a') && !isalpha('1');
  errno = 77;
  p->errno_addr = &errno;
  p->tls_addr = &tls_counter;
  mnp_ctx_switch(&p->g->ctx, &p->back, nullptr, nullptr);
  __builtin_trap();
}
void run_on(G* g, Probe* p) {
  p->g = g;
  p->back.fs = arch_get_fs();
  ctx_make(&g->ctx, g->stack_lo, gmem_stack_top(g), reinterpret_cast<uintptr_t>(g->tcb), body, p);
  mnp_ctx_switch(&p->back, &g->ctx, nullptr, nullptr);
}
}  // namespace

TEST(Tcb, LayoutValidatesOnThisGlibc) { ASSERT_TRUE(tcb_runtime_init()); }

TEST(Tcb, HeaderInitialisedAsDesigned) {
  ASSERT_TRUE(tcb_runtime_init());
  arch_init();
  G* g = gmem_alloc(64 * 1024, 4096, nullptr);
  ASSERT_NE(g, nullptr);
  char* t = static_cast<char*>(g->tcb);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(g->tcb) % tls_layout().static_align, 0u);
  EXPECT_EQ(tcb_field<void*>(g->tcb, tcbo::kSelf), g->tcb);
  EXPECT_EQ(tcb_field<void*>(g->tcb, tcbo::kHeaderTcb), g->tcb);
  EXPECT_EQ(tcb_field<int>(g->tcb, tcbo::kMultipleThreads), 1);
  EXPECT_GE(static_cast<uint32_t>(tcb_field<int>(g->tcb, tcbo::kTid)), kFakeTidBase);
  EXPECT_LT(static_cast<uint32_t>(tcb_field<int>(g->tcb, tcbo::kTid)), 0x40000000u);
  EXPECT_EQ(tcb_field<void*>(g->tcb, tcbo::kList), t + tcbo::kList);
  EXPECT_EQ(tcb_field<void*>(g->tcb, tcbo::kRobustHead), t + tcbo::kRobustHead);
  EXPECT_EQ(tcb_field<long>(g->tcb, tcbo::kRobustHead + 8), -32);
  EXPECT_EQ(tcb_field<void*>(g->tcb, tcbo::kSpecific), t + tcbo::kSpecific1stBlock);
  EXPECT_EQ(tcb_field<uint32_t>(g->tcb, tcbo::kRseqArea + 4), static_cast<uint32_t>(-2));
  uintptr_t me = arch_get_fs();
  EXPECT_EQ(tcb_field<uintptr_t>(g->tcb, tcbo::kStackGuard),
            tcb_field<uintptr_t>(reinterpret_cast<void*>(me), tcbo::kStackGuard));
  EXPECT_EQ(tcb_field<uintptr_t>(g->tcb, tcbo::kPointerGuard),
            tcb_field<uintptr_t>(reinterpret_cast<void*>(me), tcbo::kPointerGuard));
  // The stack block covers the whole mapping: the unwinder compares frame
  // addresses against its top.
  uintptr_t sb = reinterpret_cast<uintptr_t>(tcb_field<void*>(g->tcb, tcbo::kStackBlock));
  size_t sbs = tcb_field<size_t>(g->tcb, tcbo::kStackBlockSize);
  EXPECT_LE(sb, reinterpret_cast<uintptr_t>(gmem_stack_top(g)));
  EXPECT_GE(sb + sbs, reinterpret_cast<uintptr_t>(g) + sizeof(G));
  G* found = nullptr;
  EXPECT_EQ(handle_kind(reinterpret_cast<uintptr_t>(g->tcb), &found), HandleKind::kG);
  EXPECT_EQ(found, g);
  uintptr_t handle = reinterpret_cast<uintptr_t>(g->tcb);
  gmem_free(g);
  EXPECT_EQ(handle_kind(handle, &found), HandleKind::kNone);
}

TEST(Tcb, OwnErrnoTlsAndLocaleThenReuseReinitialises) {
  ASSERT_TRUE(tcb_runtime_init());
  arch_init();
  G* g = gmem_alloc(64 * 1024, 4096, nullptr);
  ASSERT_NE(g, nullptr);
  errno = 5;
  tls_counter = 7;
  Probe p{};
  run_on(g, &p);
  EXPECT_EQ(errno, 5) << "the G's errno is its own";
  EXPECT_EQ(tls_counter, 7);
  EXPECT_EQ(p.initial_tls, 42) << "__thread initial image copied";
  EXPECT_EQ(p.alpha, 1) << "__ctype_init ran on the G's TLS";
  EXPECT_NE(p.errno_addr, &errno);
  EXPECT_GT(reinterpret_cast<uintptr_t>(p.tls_addr), reinterpret_cast<uintptr_t>(g->stack_lo));
  EXPECT_LT(reinterpret_cast<uintptr_t>(p.tls_addr), reinterpret_cast<uintptr_t>(g->tcb));
  // Reuse: TLS returns to its initial image.
  uintptr_t dtv = tcb_field<uintptr_t>(g->tcb, tcbo::kDtv);
  tcb_reinit(g->tcb, g->map_base, g->map_size, g->guard_size, g->fake_tid);
  EXPECT_EQ(tcb_field<uintptr_t>(g->tcb, tcbo::kDtv), dtv);
  Probe p2{};
  run_on(g, &p2);
  EXPECT_EQ(p2.initial_tls, 42);
  EXPECT_EQ(p2.tls_addr, p.tls_addr);
  gmem_free(g);
}
