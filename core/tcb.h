// core/tcb.h — a glibc thread control block (struct pthread + static TLS)
// for every G.
//
// What: glibc 2.36 on x86_64 keeps all per-thread state (errno, stdio lock
// owners, C++ exception globals, __thread variables, the cancellation buffer)
// in the TCB at the FS base plus the static TLS block below it. Giving each G
// its own TCB, and loading it on every switch, makes each G a complete thread
// in glibc's eyes, so nothing breaks when a G migrates between Ms.
//
// Why not one TCB per M: errno, thread_local and lock ownership would be
// shared by every G that ever ran on that M and would change under a G when
// it migrates. Rejected.
//
// The layout of struct pthread is private to glibc. The offsets below were
// measured on Debian 12 (glibc 2.36); tcb_runtime_init() validates them
// against glibc's exported _thread_db_* descriptors and live values of the
// main thread, and refuses to start on any mismatch.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnp {

namespace tcbo {                // offsets inside struct pthread
constexpr size_t kSize = 2368;  // TLS_TCB_SIZE == sizeof(struct pthread)
constexpr size_t kHeaderTcb = 0;
constexpr size_t kDtv = 8;
constexpr size_t kSelf = 16;
constexpr size_t kMultipleThreads = 24;
constexpr size_t kSysinfo = 32;
constexpr size_t kStackGuard = 40;
constexpr size_t kPointerGuard = 48;
constexpr size_t kFeature1 = 72;
constexpr size_t kList = 704;
constexpr size_t kTid = 720;
constexpr size_t kRobustPrev = 728;
constexpr size_t kRobustHead = 736;
constexpr size_t kCleanup = 760;
constexpr size_t kCleanupJmpBuf = 768;
constexpr size_t kCancelHandling = 776;
constexpr size_t kSpecific1stBlock = 784;
constexpr size_t kSpecific = 1296;
constexpr size_t kUserStack = 1554;
constexpr size_t kResult = 1576;
constexpr size_t kStackBlock = 1680;
constexpr size_t kStackBlockSize = 1688;
constexpr size_t kGuardSize = 1696;
constexpr size_t kRes = 1720;
constexpr size_t kTlsState = 2304;
constexpr size_t kRseqArea = 2336;
}  // namespace tcbo

// Fake thread ids start above pid_max (4194304) and stay below the futex
// OWNER_DIED bit (0x40000000), which glibc's lock code would misread. They
// wrap after kFakeTidSpan, so that each still has a thread CPU clock id of
// its own: such an id holds a number below 2^28, and a G's is written as
// 2^22 + (tid - kFakeTidBase) (interpose/cpuclock.cpp).
constexpr uint32_t kFakeTidBase = 0x20000000;
constexpr uint32_t kFakeTidSpan = (1u << 28) - (1u << 22);

struct TlsLayout {
  size_t static_size;  // static TLS incl. the TCB (from _dl_get_tls_static_info)
  size_t static_align;
};

// Resolves glibc's private entry points and validates the layout. On failure
// prints one line naming what is wrong and returns false.
bool tcb_runtime_init();
const TlsLayout& tls_layout();

// Sets up a never-used TCB at tcb (which must be aligned to static_align and
// have static_size - kSize bytes of writable memory below it): allocates its
// DTV, copies the TLS images and initialises the header for a thread whose
// stack is [stack_lo, stack_lo + stack_size). Returns false if glibc could
// not allocate the DTV.
bool tcb_init_fresh(void* tcb, void* stack_lo, size_t stack_size, size_t guard, uint32_t tid);
// What tcb_init_standalone puts in every TCB it builds (made once, by
// mthread_prepare).
struct TlsTemplate {
  char* image = nullptr;  // the static_size - kSize bytes below a TCB
  size_t dtv_slots = 0;   // each DTV's slots, above every start-up module's id
  struct Module {
    size_t modid, offset;  // offset: of its block below the TCB
  };
  static constexpr size_t kMaxModules = 64;  // more stay unallocated in the DTV
  Module modules[kMaxModules] = {};
  size_t nmodules = 0;
};
// Sets up a TCB without glibc (it calls no allocator and takes no lock):
// the static TLS block below it copied from t.image, a DTV in dtv (2 *
// (t.dtv_slots + 2) words, generation 0) with each start-up module's
// block in its slot and the others unallocated (glibc would find them on a
// first __tls_get_addr), and the header as tcb_init_fresh. For the kernel
// threads of Ms (core/mthread.h), where only the runtime's own code runs.
void tcb_init_standalone(void* tcb, const TlsTemplate& t, uintptr_t* dtv, void* stack_lo, size_t stack_size,
                         size_t guard);
// Re-initialises a TCB of a G that exited, for a new G: frees the old
// dynamic TLS blocks, copies the TLS images again, resets the header. The
// glibc malloc words of the old G are carried over (core/mcache.h).
void tcb_reinit(void* tcb, void* stack_lo, size_t stack_size, size_t guard, uint32_t tid);
// Releases glibc resources of a TCB whose memory is about to be unmapped
// (a malloc cache still in it goes to the spares).
void tcb_release(void* tcb);
// Work done on the exiting G itself, on its own TLS: thread_local
// destructors, resolver state, strerror/strsignal buffers.
void tcb_thread_exit_cleanup(void* tcb);
// Run on a fresh G's TLS once: identifies where glibc keeps the per-thread
// malloc cache and arena, which core/mcache.h shares per P.
void tcb_probe_malloc_slots_on_current();
// TP-relative offsets of glibc malloc's `tcache` and `thread_arena` words;
// 0 while unknown (before the probe, or malloc is not glibc's). Set once,
// before a second G exists.
extern ptrdiff_t g_tcache_off, g_arena_off;
inline void*& tcb_tcache(void* tcb) { return *reinterpret_cast<void**>(static_cast<char*>(tcb) + g_tcache_off); }
inline void*& tcb_arena(void* tcb) { return *reinterpret_cast<void**>(static_cast<char*>(tcb) + g_arena_off); }
// Whether Gs may share this arena through their arena word: not glibc's
// main arena, whose thread count (attached_threads) would then count one
// thread for many, and glibc asserts it above zero each time a thread
// bound to it moves on after an allocation in it failed (arena_get_retry;
// other arenas never reach that path).
bool tcb_arena_shareable(void* arena);
// Malloc caches that neither a P nor a G has (bounded; false when full).
bool tcb_spare_put(void* tcache);
void* tcb_spare_get();

// First code on a G's TLS: locale tables (isalpha & co. crash without it).
void tcb_thread_start_on_current();
void tcb_after_fork();

template <typename T>
inline T& tcb_field(void* tcb, size_t off) {
  return *reinterpret_cast<T*>(static_cast<char*>(tcb) + off);
}

}  // namespace mnp
