// core/gmem.h — memory of a G: one region holding guard page, stack, static
// TLS, the glibc TCB and the G itself (carved from a slab shared with other
// Gs of the same size, or a mapping of its own where the kernel has no
// guard regions), the table that turns a pthread_t (the TCB address) back
// into a G, and the giving back of memory: freed regions, and the stack
// pages below a long-parked G's stack pointer (gmem.cpp explains each).
//
// Layout, low to high addresses:
//   [guard][stack ............][static TLS][struct pthread (TCB)][G]
//          \___________ the requested stack size ______________/
// As with glibc, the requested size holds TLS and TCB (and here the G), and
// pthread_getattr_np reports exactly that block.
// The G sits right above the TCB, so a valid handle h maps to (G*)(h + 2368)
// without a lookup; the table only answers "is h one of ours" so that a bad
// handle gets ESRCH instead of a crash.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/sched.h"

namespace mnp {

// user_stack non-null: the program's own stack of stack_size bytes (TLS, TCB
// and G are carved from its top, as glibc does). Returns null (and prints one
// line the first time the kernel's map limit is hit) on failure. tid 0: a
// new thread id (gmem_new_tid); a runtime TCB (an M's scheduler, the
// malloc probe) passes the kernel tid of the thread it runs on instead, and
// so never opens the machine-wide id counter.
G* gmem_alloc(size_t stack_size, size_t guard, void* user_stack, uint32_t tid = 0);
// The smallest stack size gmem_alloc takes (without a user stack): TLS, TCB,
// G and 2 KiB; smaller requests get EINVAL, as glibc gives.
size_t gmem_min_stack();
// Whether gp (made by gmem_alloc with no user stack) has the layout that
// gmem_alloc(stack_size, guard, nullptr) would make: it may stand for it.
bool gmem_layout_matches(const G* gp, size_t stack_size, size_t guard);
void gmem_free(G* gp);
// gmem_free, except that the memory goes back at the next gmem_reclaim (a
// caller freeing many calls that once, after them all: it coalesces
// neighbouring regions into one madvise).
void gmem_free_deferred(G* gp);
// gmem_free_deferred, and every kReclaimBatch such frees the caller runs
// gmem_reclaim itself: a thread that reaps Gs by the thousand (the joins
// after a burst) gives their memory back as it goes, as glibc's join
// unmaps a stack its cache does not keep, instead of leaving it all for
// sysmon's bounded rounds.
constexpr int kReclaimBatch = 256;
void gmem_free_batched(G* gp);
// Around reading another M's curg and using that G (see gmem.cpp: a reaped
// G's memory is unmapped only when no such peek is in progress).
void gmem_peek_begin();
void gmem_peek_end();
// Gives back the memory of the freed Gs no peek can still see; sysmon calls
// it every round. True if some is left for a later round.
bool gmem_reclaim();
// Returns the pages of a free G's stack to the kernel, keeping the mapping.
void gmem_trim(G* gp);
// sysmon: gives back the stack pages below the saved stack pointer of Gs
// parked since its previous look (at least kShrinkScanNs). parks: the sum
// of P::parks. True while some parked G still waits for a look, or Gs have
// parked since the last walk.
bool gmem_shrink_parked(int64_t now, uint64_t parks);
// Before a G is switched to (status just moved to Running): waits while
// sysmon is shrinking its stack.
enum : uint32_t { kShrinkNone, kShrinkBusy, kShrinkDone };
void gmem_resume_slow(G* gp);
inline void gmem_resume(G* gp) {
  if (__builtin_expect(gp->shrink.load(std::memory_order_seq_cst) != kShrinkNone, 0)) gmem_resume_slow(gp);
}
// In a child of fork, from the forking G (self): locks other threads may
// have held are reset, and only self and free Gs stay in the handle table.
void gmem_after_fork(G* self);
void* gmem_stack_top(G* gp);
void gmem_set_tls_g(G* gp);
void gmem_set_tls_g_at(void* tcb, G* g);
void gmem_register_main(G* mg);
int32_t gmem_global_cache_max();

// Calls fn(tcb) for the TCB of every G whose memory exists (running,
// parked, finished or cached), under the handle table's lock.
template <typename Fn>
void gmem_for_each_tcb(Fn fn);

// Thread ids (docs/ARCHITECTURE.md, "Thread ids"). A G gets a fresh id
// each time it is made (a reused G too), above any pid_max: kFakeTidBase +
// n, n from a machine-wide counter, so ids are unique across processes (they
// are the owners glibc writes into process-shared objects). The main G
// keeps the process's own id.
uint32_t gmem_new_tid();
// Calls fn(gp) for the live G (created and not finished) whose id is tid,
// under the handle table's lock, so the G's memory stays mapped meanwhile
// (fn must not block, allocate or create threads). Returns false if no live
// G has that id.
template <typename Fn>
bool gmem_with_tid(uint32_t tid, Fn fn);

enum class HandleKind { kNone, kG, kNative };
// Threads created with the real pthread_create (before the runtime was up)
// are remembered so their handles still work with the real functions.
void handle_register_native(uintptr_t h);
void handle_unregister_native(uintptr_t h);
HandleKind handle_kind(uintptr_t h, G** out);

namespace detail {
void for_each_tcb(void (*cb)(void*, void*), void* ctx);
bool with_tid(uint32_t tid, void (*cb)(void*, G*), void* ctx);
}  // namespace detail
template <typename Fn>
bool gmem_with_tid(uint32_t tid, Fn fn) {
  return detail::with_tid(
      tid, [](void* c, G* gp) { (*static_cast<Fn*>(c))(gp); }, &fn);
}
template <typename Fn>
void gmem_for_each_tcb(Fn fn) {
  detail::for_each_tcb([](void* c, void* tcb) { (*static_cast<Fn*>(c))(tcb); }, &fn);
}

}  // namespace mnp
