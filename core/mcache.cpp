// core/mcache.cpp — glibc malloc's per-thread cache, one per P (see
// core/mcache.h; docs/ARCHITECTURE.md, "Malloc caches").
#include "core/mcache.h"

namespace mnp {

namespace {
// Whether pp may take the arena a G brings: not the main arena
// (tcb_arena_shareable) and no other P's, so Ps allocate in parallel.
// Two Ps that take one at the same moment may share it: only slower.
bool arena_for_p(void* arena) {
  if (arena == nullptr || !tcb_arena_shareable(arena)) return false;
  for (uint32_t i = 0; i < sched.nprocs; i++)
    if (sched.allp[i].marena == arena) return false;
  return true;
}

// pp has no arena yet: it takes gp's if it may. A G whose arena it may not
// take keeps its own (glibc's count of the threads bound to that arena
// stays true).
void adopt_arena(G* gp, P* pp) {
  void* arena = tcb_arena(gp->tcb);
  if (arena_for_p(arena)) pp->marena = arena;
}
}  // namespace

void mcache_bind_slow(G* gp, P* pp) {
  if (!g_tcache_off || gp->in_handler != 0) return;
  void*& word = tcb_tcache(gp->tcb);
  if (gp->mcache_own && word != nullptr && word != pp->mcache) {
    if (pp->mcache == nullptr) pp->mcache = word;
    else if (!tcb_spare_put(word)) return;  // no room: it stays the G's
  }
  if (pp->mcache == nullptr) pp->mcache = tcb_spare_get();
  word = pp->mcache;
  // None anywhere: glibc makes one in the G's word at its first malloc,
  // and the P adopts it when the G leaves.
  gp->mcache_own = pp->mcache == nullptr;
  if (g_arena_off) {
    if (pp->marena != nullptr) tcb_arena(gp->tcb) = pp->marena;
    else adopt_arena(gp, pp);
  }
}

void mcache_leave_slow(G* gp, P* pp) {
  if (!g_tcache_off) return;
  if (gp->in_handler != 0) {
    // Switched away inside a handler, which may have interrupted a malloc
    // (preemption never stops a G there: the trampoline's frames are the
    // shim's, "Scheduling"): the cache stays with the G.
    void* word = tcb_tcache(gp->tcb);
    if (!gp->mcache_own && word != nullptr && word == pp->mcache) {
      pp->mcache = nullptr;
      gp->mcache_own = true;
    }
    return;
  }
  mcache_bind_slow(gp, pp);  // it owns a cache: back to the P or the spares
}

void mcache_exit(G* gp, P* pp) {
  if (!g_tcache_off) return;
  // Not the arena of a G that ends inside a handler: the malloc it may
  // have interrupted may hold that arena's lock for good.
  if (pp != nullptr && pp->marena == nullptr && g_arena_off && gp->in_handler == 0) adopt_arena(gp, pp);
  void*& word = tcb_tcache(gp->tcb);
  if (gp->in_handler != 0) {
    // Ending inside a handler that may have interrupted a malloc: the
    // cache in its word may be half-changed, and is left to no one (as
    // natively it dies with its thread).
    if (!gp->mcache_own && pp != nullptr && word == pp->mcache) pp->mcache = nullptr;
  } else if (gp->mcache_own && word != nullptr) {
    // Kept in the word when it has nowhere to go: the next G on this
    // memory starts with it (mcache_reuse), or tcb_release spares it. Not
    // marked as owned, or the switch away from the dead G would give it
    // back and bind it to its P's cache (a third review).
    bool kept = pp == nullptr;
    if (!kept) {
      if (pp->mcache == nullptr) pp->mcache = word;
      else kept = !tcb_spare_put(word);
    }
    if (kept) {
      gp->mcache_own = false;
      return;
    }
  }
  // Not own and empty: the switch away from it binds nothing (it must not:
  // tcb_release would spare a P's cache), and the next G on this memory
  // gets its P's cache at its first bind.
  word = nullptr;
  gp->mcache_own = false;
}

void mcache_reuse(G* gp) {
  if (g_tcache_off) gp->mcache_own = tcb_tcache(gp->tcb) != nullptr;
}

MNP_STARTUP void mcache_after_fork(G* gp, P* pp) {
  if (!g_tcache_off) return;
  for (uint32_t i = 0; i < sched.nprocs; i++) sched.allp[i].mcache = nullptr;
  if (gp == nullptr) return;
  void* word = tcb_tcache(gp->tcb);
  pp->mcache = word;
  gp->mcache_own = word == nullptr;
}

}  // namespace mnp
