// core/mcache.h — glibc malloc's per-thread cache, one per P
// (docs/ARCHITECTURE.md, "Malloc caches").
//
// glibc keeps a thread's cache of freed chunks (`tcache`) and its arena
// (`thread_arena`) in two TLS words. Every G has TLS of its own, so by
// default every G filled a cache of its own (about 100 KiB for a thread that
// churns small blocks). Instead the words of the G that runs point at its
// P's cache and arena: one cache per P, as Go's mcache.
//
// A cache is used without a lock, so at most one running context may use
// it. Each is owned either by a P (P::mcache) or by one G (G::mcache_own:
// the G's word holds a cache no P has). A G whose word is its P's cache
// never leaves that P with a malloc half done, except in two ways, and both
// hand the P's cache to the G (a "lend"; the P gets another):
//   - a P taken from an M in a call (sysmon's retake, give_p, or an M
//     whose CAS wins its old P back after another M's G marked it,
//     exitsyscall_fast): the call may be library code that mallocs
//     (getline, getaddrinfo) or code no wrapper covers that blocked in
//     malloc's own lock (poke.cpp);
//   - a switch away from a G inside a handler of the program's
//     (G::in_handler): what the handler interrupted may be a malloc.
// While G::in_handler is non-zero the G's words are never changed;
// otherwise a G that owns a cache gives it to its P (if the P has none)
// or to a spare list at its next switch.
#pragma once

#include "core/sched.h"
#include "core/tcb.h"

namespace mnp {

void mcache_bind_slow(G* gp, P* pp);
void mcache_leave_slow(G* gp, P* pp);

// gp is about to run on pp: its words become pp's cache and arena. A P
// without an arena yet takes one a G brings to a slow bind or to its exit
// (mcache.cpp, arena_for_p): not on every switch, which cost a yield
// ping-pong 4 ns a round at 1 P.
inline void mcache_bind(G* gp, P* pp) {
  if (!g_tcache_off) return;
  void* t = tcb_tcache(gp->tcb);
  if (MNP_LIKELY(t == pp->mcache && t != nullptr)) return;
  mcache_bind_slow(gp, pp);
}

// gp is switched away from pp (null: it has none).
inline void mcache_leave(G* gp, P* pp) {
  if (pp && MNP_UNLIKELY(gp->mcache_own || gp->in_handler != 0)) mcache_leave_slow(gp, pp);
}

// mark_in_syscall: gp's call begins on pp. A taker of pp must leave pp's
// cache to gp when gp's words hold it.
inline void mcache_enter_call(G* gp, P* pp) { pp->mcache_in_call = !gp->mcache_own; }
// pp was just taken from an M in a call (its kPSyscall CAS won).
inline void mcache_taken(P* pp) {
  if (pp->mcache_in_call) pp->mcache = nullptr;
}
// gp's call ended on the M and its P had been taken meanwhile: the cache
// its words hold is its own now (mcache_taken), if it was not already.
inline void mcache_lost_p(G* gp) { gp->mcache_own = true; }
// gp's M won its old P back from another M's G, which had marked it after
// a retake (exitsyscall_fast, M::syscalltick): that G keeps the P's cache
// as from any taker, and gp's went with the retake. Without this the P
// kept a cache the other G then took along: two Ps with one cache.
inline void mcache_took_back(G* gp, P* pp) {
  mcache_taken(pp);
  mcache_lost_p(gp);
  mcache_bind(gp, pp);
}

// gp ends on pp (null: it has none): its words let go of pp's cache; a
// cache of its own goes to pp or to the spares.
void mcache_exit(G* gp, P* pp);
// newproc, on a G whose memory held an exited one: glibc may have made a
// cache in its empty word since (a malloc on its TLS in the exit path's
// wake-ups), which is the new G's own.
void mcache_reuse(G* gp);
// The fork child, on its only G (null: forked on g0) and P: the other
// Ps' caches may have been in use by threads the child does not have.
void mcache_after_fork(G* gp, P* pp);

}  // namespace mnp
