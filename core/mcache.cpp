// core/mcache.cpp — glibc malloc's per-thread cache, one per P (see
// core/mcache.h; docs/ARCHITECTURE.md, "Malloc caches").
#include "core/mcache.h"

namespace mnp {

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
    void*& arena = tcb_arena(gp->tcb);
    if (pp->marena != nullptr) arena = pp->marena;
    else pp->marena = arena;
  }
}

void mcache_lend_to_handler(G* gp) {
  if (!g_tcache_off || gp->mcache_own) return;
  // In a call (no P): whoever takes its P lends (mcache_taken), or the G
  // does when it takes that P back (exitsyscall_fast).
  P* pp = gp->m->p;
  if (pp == nullptr || tcb_tcache(gp->tcb) != pp->mcache) return;
  pp->mcache = nullptr;
  gp->mcache_own = true;
}

void mcache_exit(G* gp, P* pp) {
  if (!g_tcache_off) return;
  void*& word = tcb_tcache(gp->tcb);
  if (gp->mcache_own && word != nullptr) {
    if (pp->mcache == nullptr) pp->mcache = word;
    else if (!tcb_spare_put(word)) return;  // the next G on this TCB keeps it
  }
  word = nullptr;
  gp->mcache_own = true;
}

}  // namespace mnp
