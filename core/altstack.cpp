// core/altstack.cpp — alternate signal stacks that move with their G (see
// altstack.h).
#include "core/altstack.h"

#include <signal.h>
#include <sys/mman.h>

#include <new>

#include "core/base.h"
#include "core/futex.h"

namespace mnp {

void altstack_put(M* mp, const G* want, uintptr_t want_sp) {
  stack_t ss = {};
  uintptr_t lo = 0, hi = 0;
  if (want && want->own_altstack &&
      !((want->altstack_flags & kSsAutodisarm) && want_sp >= want->altstack_lo && want_sp < want->altstack_hi)) {
    lo = want->altstack_lo;
    hi = want->altstack_hi;
    ss.ss_sp = reinterpret_cast<void*>(lo);
    ss.ss_size = hi - lo;
    ss.ss_flags = want->altstack_flags;
  } else {
    ss.ss_flags = SS_DISABLE;
  }
  // The kernel took this stack before, on some thread, but a seccomp
  // filter installed since, or a larger signal frame allowed since (x86's
  // AMX: ENOMEM for a small stack), may refuse it now: then none, rather
  // than a stack that another thread may be given meanwhile.
  if (raw_syscall(SYS_sigaltstack, reinterpret_cast<long>(&ss), 0) != 0) {
    stack_t off = {nullptr, SS_DISABLE, 0};
    if (lo == 0 || raw_syscall(SYS_sigaltstack, reinterpret_cast<long>(&off), 0) != 0)
      fatal("sigaltstack refused while moving a thread's alternate signal stack between kernel threads");
    lo = hi = 0;
  }
  mp->alt_lo = lo;
  mp->alt_hi = hi;
}

namespace {

// Open addressing on the region's address; kTomb marks a removed entry.
struct Claim {
  uintptr_t lo;
  G* g;
};
constexpr uintptr_t kTomb = 1;
constinit Lock g_claim_lock;
constinit Claim* g_claims = nullptr;
constinit size_t g_cap = 0;    // a power of two, or 0
constinit size_t g_used = 0;   // entries and tombstones
constinit size_t g_count = 0;  // entries

// The product's high bits: the low ones are zero for page-aligned regions.
size_t slot_of(uintptr_t lo) {
  return static_cast<size_t>((lo * 0x9E3779B97F4A7C15ULL) >> (64 - __builtin_ctzll(g_cap)));
}

Claim* find_locked(uintptr_t lo) {
  if (!g_cap) return nullptr;
  for (size_t i = slot_of(lo);; i = (i + 1) & (g_cap - 1)) {
    if (g_claims[i].lo == lo) return &g_claims[i];
    if (g_claims[i].lo == 0) return nullptr;
  }
}

// Room for one more entry; false if no memory (the caller then gives no
// region to the kernel: the view-only stack is the safe side).
bool reserve_locked() {
  if ((g_used + 1) * 2 <= g_cap) return true;
  size_t cap = g_count * 4 > 64 ? g_count * 4 : 64;
  size_t pow = 64;
  while (pow < cap) pow *= 2;
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(pow * sizeof(Claim)), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) return false;
  Claim* old = g_claims;
  size_t old_cap = g_cap;
  g_claims = reinterpret_cast<Claim*>(r);
  g_cap = pow;
  g_used = g_count;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].lo <= kTomb) continue;
    size_t j = slot_of(old[i].lo);
    while (g_claims[j].lo != 0) j = (j + 1) & (g_cap - 1);
    g_claims[j] = old[i];
  }
  if (old) raw_syscall(SYS_munmap, reinterpret_cast<long>(old), static_cast<long>(old_cap * sizeof(Claim)));
  return true;
}

void erase(Claim* c) {
  c->lo = kTomb;
  c->g = nullptr;
  g_count--;
}

}  // namespace

bool altstack_claim(G* g, uintptr_t lo) {
  LockGuard lk(g_claim_lock);
  if (Claim* c = find_locked(lo)) return c->g == g;
  if (!reserve_locked()) return false;
  size_t i = slot_of(lo);
  while (g_claims[i].lo > kTomb) i = (i + 1) & (g_cap - 1);
  if (g_claims[i].lo == 0) g_used++;
  g_claims[i] = Claim{lo, g};
  g_count++;
  return true;
}

void altstack_unclaim(G* g, uintptr_t lo) {
  LockGuard lk(g_claim_lock);
  if (Claim* c = find_locked(lo); c && c->g == g) erase(c);
}

void altstack_exit(G* g) {
  if (g->own_altstack) altstack_unclaim(g, g->altstack_lo);
  g->own_altstack = false;
  g->altstack_virtual = false;
  g->altstack_lo = g->altstack_hi = 0;
  g->altstack_flags = 0;
}

MNP_STARTUP void altstack_after_fork(G* self) {
  g_claim_lock.reset_in_child();  // another thread may have held it
  for (size_t i = 0; i < g_cap; i++)
    if (g_claims[i].lo > kTomb && g_claims[i].g != self) erase(&g_claims[i]);
}

}  // namespace mnp
