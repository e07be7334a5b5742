// core/tcb.cpp — glibc TCB set-up for Gs. See tcb.h for the why.
#include "core/tcb.h"

#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <resolv.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "arch/x86_64/context.h"
#include "core/base.h"
#include "core/futex.h"

extern "C" {
extern const ptrdiff_t __rseq_offset;  // glibc >= 2.35: TP-relative rseq area
// glibc's first-ABI cleanup buffers (exported, no longer declared).
void _pthread_cleanup_push(struct _pthread_cleanup_buffer*, void (*)(void*), void*);
void _pthread_cleanup_pop(struct _pthread_cleanup_buffer*, int);
}

namespace mnp {
namespace {

struct GlibcPrivate {
  void* (*dl_allocate_tls)(void*);
  void* (*dl_allocate_tls_init)(void*, bool);
  void (*dl_deallocate_tls)(void*, bool);
  void (*dl_get_tls_static_info)(size_t*, size_t*);
  void (*call_tls_dtors)();
  void (*ctype_init)();
  ptrdiff_t resp_offset;  // TP-relative address of libc's __resp TLS pointer
};

constexpr size_t kSpecificUsed = tcbo::kSpecific + 32 * sizeof(void*);  // bool after specific[32]
struct KeyStruct {
  uintptr_t seq;
  void (*destr)(void*);
};
struct KeyData {
  uintptr_t seq;
  void* data;
};
MNP_START_DATA constinit KeyStruct* g_keys = nullptr;  // glibc's __pthread_keys[PTHREAD_KEYS_MAX]

MNP_START_DATA constinit GlibcPrivate g_glibc{};
MNP_START_DATA constinit TlsLayout g_layout{};
// Header words every thread shares, captured from the main thread's TCB.
MNP_START_DATA constinit uintptr_t g_sysinfo = 0, g_stack_guard = 0, g_pointer_guard = 0;
MNP_START_DATA constinit uint32_t g_feature_1 = 0;

// Malloc caches no P and no G has (core/mcache.h), for a P without one.
constexpr int kSpareCaches = 256;
constinit Lock g_spare_lock;
MNP_COLD_BSS constinit void* g_spare_tcache[kSpareCaches] = {};
constinit int g_nspare = 0;

template <typename F>
MNP_STARTUP bool resolve(F* out, void* handle, const char* name, const char* ver) {
  void* p = ver ? dlvsym(handle, name, ver) : dlsym(handle, name);
  if (!p) {
    raw_print({"glibc symbol ", name, " not found; this glibc is not supported, refusing to start"});
    return false;
  }
  *out = reinterpret_cast<F>(p);
  return true;
}

MNP_STARTUP bool check_descriptor(const char* name, uint32_t want_off) {
  auto* d = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, name, "GLIBC_PRIVATE"));
  if (d && d[2] == want_off) return true;
  raw_print({"struct pthread layout mismatch at ", name, d ? " (offset differs)" : " (descriptor missing)",
             "; this glibc is not supported, refusing to start"});
  return false;
}

MNP_STARTUP bool check(bool ok, const char* what) {
  if (!ok) raw_print({"glibc thread layout check failed: ", what, "; refusing to start"});
  return ok;
}

char* tp_ptr(void* tcb, ptrdiff_t off) { return static_cast<char*>(tcb) + off; }

// Resets struct pthread (keeping the DTV pointer) and fills the header.
void init_header(void* tcb, void* stack_lo, size_t stack_size, size_t guard, uint32_t tid) {
  char* t = static_cast<char*>(tcb);
  uintptr_t dtv = tcb_field<uintptr_t>(tcb, tcbo::kDtv);
  std::memset(t, 0, tcbo::kSize);
  tcb_field<uintptr_t>(tcb, tcbo::kDtv) = dtv;
  tcb_field<void*>(tcb, tcbo::kHeaderTcb) = tcb;
  tcb_field<void*>(tcb, tcbo::kSelf) = tcb;
  tcb_field<int>(tcb, tcbo::kMultipleThreads) = 1;
  tcb_field<uintptr_t>(tcb, tcbo::kSysinfo) = g_sysinfo;
  tcb_field<uintptr_t>(tcb, tcbo::kStackGuard) = g_stack_guard;
  tcb_field<uintptr_t>(tcb, tcbo::kPointerGuard) = g_pointer_guard;
  tcb_field<uint32_t>(tcb, tcbo::kFeature1) = g_feature_1;
  // list_t list: a thread on no glibc list points to itself (fork relies on it).
  tcb_field<void*>(tcb, tcbo::kList) = t + tcbo::kList;
  tcb_field<void*>(tcb, tcbo::kList + 8) = t + tcbo::kList;
  tcb_field<int>(tcb, tcbo::kTid) = static_cast<int>(tid);
  // Robust list: empty, pointing to itself, futex at -32 from the list entry.
  tcb_field<void*>(tcb, tcbo::kRobustPrev) = t + tcbo::kRobustHead;
  tcb_field<void*>(tcb, tcbo::kRobustHead) = t + tcbo::kRobustHead;
  tcb_field<long>(tcb, tcbo::kRobustHead + 8) = -32;
  tcb_field<void*>(tcb, tcbo::kSpecific) = t + tcbo::kSpecific1stBlock;
  tcb_field<uint8_t>(tcb, tcbo::kUserStack) = 1;
  tcb_field<void*>(tcb, tcbo::kStackBlock) = stack_lo;
  tcb_field<size_t>(tcb, tcbo::kStackBlockSize) = stack_size;
  tcb_field<size_t>(tcb, tcbo::kGuardSize) = guard;
  // rseq not registered for this "thread": cpu_id = RSEQ_CPU_ID_REGISTRATION_FAILED
  // makes sched_getcpu fall back to the syscall.
  tcb_field<uint32_t>(tcb, tcbo::kRseqArea + 4) = static_cast<uint32_t>(-2);
  tcb_field<uint32_t>(tcb, tcbo::kRseqArea + 0) = static_cast<uint32_t>(-2);
  *reinterpret_cast<void**>(tp_ptr(tcb, g_glibc.resp_offset)) = t + tcbo::kRes;
}

void free_dynamic_tls(void* tcb) {
  // dtv[-1].counter = slots, dtv[0].counter = generation, dtv[i] = {val, to_free}.
  auto* dtv = tcb_field<uintptr_t*>(tcb, tcbo::kDtv);
  if (!dtv) return;
  size_t n = dtv[-2];
  for (size_t i = 1; i <= n; i++) {
    void* to_free = reinterpret_cast<void*>(dtv[2 * i + 1]);
    if (to_free) {
      free(to_free);
      dtv[2 * i + 1] = 0;
    }
  }
}

}  // namespace

const TlsLayout& tls_layout() { return g_layout; }

MNP_STARTUP bool tcb_runtime_init() {
  const char* kPriv = "GLIBC_PRIVATE";
  void* resp = nullptr;
  if (!resolve(&g_glibc.dl_allocate_tls, RTLD_DEFAULT, "_dl_allocate_tls", kPriv) ||
      !resolve(&g_glibc.dl_allocate_tls_init, RTLD_DEFAULT, "_dl_allocate_tls_init", kPriv) ||
      !resolve(&g_glibc.dl_deallocate_tls, RTLD_DEFAULT, "_dl_deallocate_tls", kPriv) ||
      !resolve(&g_glibc.dl_get_tls_static_info, RTLD_DEFAULT, "_dl_get_tls_static_info", kPriv) ||
      !resolve(&g_glibc.call_tls_dtors, RTLD_DEFAULT, "__call_tls_dtors", kPriv) ||
      !resolve(&g_glibc.ctype_init, RTLD_DEFAULT, "__ctype_init", kPriv) ||
      !resolve(&resp, RTLD_DEFAULT, "__resp", kPriv))
    return false;
  uintptr_t tp = arch_get_fs();
  g_glibc.resp_offset = static_cast<char*>(resp) - reinterpret_cast<char*>(tp);

  auto* sz = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread", kPriv));
  if (!check(sz && *sz == tcbo::kSize, "sizeof(struct pthread) differs")) return false;
  if (!check_descriptor("_thread_db_pthread_tid", tcbo::kTid) ||
      !check_descriptor("_thread_db_pthread_list", tcbo::kList) ||
      !check_descriptor("_thread_db_pthread_cancelhandling", tcbo::kCancelHandling) ||
      !check_descriptor("_thread_db_pthread_specific", tcbo::kSpecific) ||
      !check_descriptor("_thread_db_pthread_dtvp", tcbo::kDtv) ||
      !check_descriptor("_thread_db_pthread_report_events", tcbo::kUserStack - 1))
    return false;
  // Live values of the initial thread confirm the fields no descriptor covers.
  void* self = reinterpret_cast<void*>(tp);
  char* s = static_cast<char*>(self);
  if (!check(tcb_field<void*>(self, tcbo::kSelf) == self, "header.self") ||
      !check(tcb_field<void*>(self, tcbo::kRobustHead) == s + tcbo::kRobustHead, "robust_head") ||
      !check(tcb_field<long>(self, tcbo::kRobustHead + 8) == -32, "robust futex_offset") ||
      !check(tcb_field<void*>(self, tcbo::kSpecific) == s + tcbo::kSpecific1stBlock, "specific[0]") ||
      !check(__rseq_offset == static_cast<ptrdiff_t>(tcbo::kRseqArea), "rseq_area") ||
      !check(resp == nullptr || g_glibc.resp_offset < 0, "__resp in static TLS"))
    return false;

  // interpose/cancel.h links cleanup buffers at kCleanup itself: glibc's
  // own push must put the buffer exactly there.
  {
    _pthread_cleanup_buffer probe;
    void* before = tcb_field<void*>(self, tcbo::kCleanup);
    _pthread_cleanup_push(&probe, nullptr, nullptr);
    bool at_offset = tcb_field<void*>(self, tcbo::kCleanup) == &probe && probe.__prev == before;
    _pthread_cleanup_pop(&probe, 0);
    if (!check(at_offset && tcb_field<void*>(self, tcbo::kCleanup) == before, "cleanup list")) return false;
  }

  g_keys = static_cast<KeyStruct*>(dlvsym(RTLD_DEFAULT, "__pthread_keys", kPriv));
  if (!check(g_keys != nullptr, "__pthread_keys missing")) return false;
  g_glibc.dl_get_tls_static_info(&g_layout.static_size, &g_layout.static_align);
  if (!check(g_layout.static_size > tcbo::kSize && g_layout.static_align >= 16 &&
                 (g_layout.static_align & (g_layout.static_align - 1)) == 0,
             "static TLS size"))
    return false;
  g_sysinfo = tcb_field<uintptr_t>(self, tcbo::kSysinfo);
  g_stack_guard = tcb_field<uintptr_t>(self, tcbo::kStackGuard);
  g_pointer_guard = tcb_field<uintptr_t>(self, tcbo::kPointerGuard);
  g_feature_1 = tcb_field<uint32_t>(self, tcbo::kFeature1);
  return true;
}

MNP_START_DATA constinit ptrdiff_t g_tcache_off = 0, g_arena_off = 0;

bool tcb_init_fresh(void* tcb, void* stack_lo, size_t stack_size, size_t guard, uint32_t tid) {
  tcb_field<uintptr_t>(tcb, tcbo::kDtv) = 0;
  if (!g_glibc.dl_allocate_tls(tcb)) return false;
  init_header(tcb, stack_lo, stack_size, guard, tid);
  return true;
}

void tcb_init_standalone(void* tcb, const TlsTemplate& t, uintptr_t* dtv, void* stack_lo, size_t stack_size,
                         size_t guard) {
  size_t below = g_layout.static_size - tcbo::kSize;
  std::memcpy(static_cast<char*>(tcb) - below, t.image, below);
  // In words: the DTV pointer is word 2 (glibc's dtv[0], the generation);
  // word 0 is dtv[-1], the slot count; module m's {block, to_free} is at
  // words 2 + 2m and 3 + 2m. -1 is glibc's "unallocated".
  std::memset(dtv, 0, 4 * sizeof(uintptr_t));
  dtv[0] = t.dtv_slots;
  for (size_t i = 1; i <= t.dtv_slots; i++) {
    dtv[2 + 2 * i] = ~uintptr_t{0};
    dtv[3 + 2 * i] = 0;
  }
  for (size_t i = 0; i < t.nmodules; i++)
    dtv[2 + 2 * t.modules[i].modid] = reinterpret_cast<uintptr_t>(static_cast<char*>(tcb) - t.modules[i].offset);
  tcb_field<uintptr_t>(tcb, tcbo::kDtv) = reinterpret_cast<uintptr_t>(dtv + 2);
  init_header(tcb, stack_lo, stack_size, guard, 0);
}

void tcb_reinit(void* tcb, void* stack_lo, size_t stack_size, size_t guard, uint32_t tid) {
  void* tcache = g_tcache_off ? tcb_tcache(tcb) : nullptr;
  void* arena = g_arena_off ? tcb_arena(tcb) : nullptr;
  free_dynamic_tls(tcb);
  g_glibc.dl_allocate_tls_init(tcb, true);
  init_header(tcb, stack_lo, stack_size, guard, tid);
  if (g_tcache_off) tcb_tcache(tcb) = tcache;
  if (g_arena_off) tcb_arena(tcb) = arena;
}

void tcb_release(void* tcb) {
  // Normally empty (mcache_exit); else a cache of the G's own.
  if (g_tcache_off && tcb_tcache(tcb)) tcb_spare_put(tcb_tcache(tcb));
  g_glibc.dl_deallocate_tls(tcb, false);
}

// g_nspare is written under the lock and read without it first: a P with
// no cache looks at every bind, and the list is almost always empty.
bool tcb_spare_put(void* tcache) {
  LockGuard lk(g_spare_lock);
  int n = g_nspare;
  if (n == kSpareCaches) return false;
  g_spare_tcache[n] = tcache;
  __atomic_store_n(&g_nspare, n + 1, __ATOMIC_RELAXED);
  return true;
}

void* tcb_spare_get() {
  if (__atomic_load_n(&g_nspare, __ATOMIC_RELAXED) == 0) return nullptr;
  LockGuard lk(g_spare_lock);
  int n = g_nspare;
  if (n == 0) return nullptr;
  __atomic_store_n(&g_nspare, n - 1, __ATOMIC_RELAXED);
  return g_spare_tcache[n - 1];
}

void tcb_thread_start_on_current() { g_glibc.ctype_init(); }

// A thread of the parent's may have been half-way through the spare list:
// the child forgets it (what it held is lost, as natively other threads'
// caches are).
MNP_STARTUP void tcb_after_fork() {
  g_spare_lock.reset_in_child();
  g_nspare = 0;
}

namespace {

// glibc's pthread_key_create/setspecific work on a G's TCB as they are, but
// the destructor walk at thread exit is glibc-internal: do it here, with the
// same rules (up to PTHREAD_DESTRUCTOR_ITERATIONS rounds, a value is cleared
// before its destructor runs, stale keys are skipped), then free the
// second-level arrays.
void run_key_destructors(void* tcb) {
  auto& used = tcb_field<uint8_t>(tcb, kSpecificUsed);
  auto** specific = reinterpret_cast<KeyData**>(static_cast<char*>(tcb) + tcbo::kSpecific);
  if (g_keys && used) {
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS && used; round++) {
      used = 0;
      for (size_t cnt = 0, idx = 0; cnt < 32; cnt++) {
        KeyData* level2 = __atomic_load_n(&specific[cnt], __ATOMIC_RELAXED);
        if (!level2) {
          idx += 32;
          continue;
        }
        for (size_t inner = 0; inner < 32; inner++, idx++) {
          void* data = level2[inner].data;
          if (!data) continue;
          level2[inner].data = nullptr;
          if (level2[inner].seq == g_keys[idx].seq && g_keys[idx].destr) g_keys[idx].destr(data);
        }
      }
    }
  }
  // Almost always all null: 31 calls of free(nullptr) were ~15% of a
  // create+join.
  for (size_t cnt = 1; cnt < 32; cnt++) {
    if (specific[cnt]) {
      free(specific[cnt]);
      specific[cnt] = nullptr;
    }
  }
  used = 0;
}
}  // namespace

void tcb_thread_exit_cleanup(void* tcb) {
  g_glibc.call_tls_dtors();
  run_key_destructors(tcb);
  auto* res = reinterpret_cast<struct __res_state*>(static_cast<char*>(tcb) + tcbo::kRes);
  if (res->options & RES_INIT) res_nclose(res);
  // struct tls_internal_t { char *strsignal_buf; char *strerror_l_buf; }
  void** tls_state = reinterpret_cast<void**>(static_cast<char*>(tcb) + tcbo::kTlsState);
  free(tls_state[0]);
  free(tls_state[1]);
  tls_state[0] = tls_state[1] = nullptr;
}

namespace {
// True when malloc is glibc's own: a program linked with (or preloaded with)
// jemalloc, tcmalloc or mimalloc keeps its allocator, whose thread state is
// its own business (its TLS words are no tcache to carry between Gs).
// _dl_find_object, not dladdr: dladdr scans libc's whole symbol table for
// the nearest name (60-200 us at start-up here) and takes the loader's lock.
// The object is named, not compared with the one of another libc function:
// Firefox's executable defines both malloc (mozjemalloc) and abort, and the
// probe then took a word of its TLS for a tcache and crashed.
bool malloc_is_glibcs() {
  dl_find_object mo{};
  if (_dl_find_object(reinterpret_cast<void*>(&malloc), &mo) != 0 || !mo.dlfo_link_map) return false;
  const char* name = mo.dlfo_link_map->l_name;
  const char* base = name ? strrchr(name, '/') : nullptr;
  return base && strcmp(base + 1, "libc.so.6") == 0;
}
}  // namespace

bool tcb_arena_shareable(void* arena) {
  // Every other arena sits at the start of a heap glibc mapped itself; the
  // main arena is libc's own data. Asked whenever a P without an arena
  // meets a G with one (the main G's, over and over): the main arena's
  // answer is remembered.
  static constinit std::atomic<void*> main_arena{nullptr};
  if (arena == main_arena.load(std::memory_order_relaxed)) return false;
  dl_find_object o{};
  if (_dl_find_object(arena, &o) != 0) return true;
  main_arena.store(arena, std::memory_order_relaxed);
  return false;
}

void tcb_probe_malloc_slots_on_current() {
  if (!malloc_is_glibcs()) return;
  // Compare every word of this fresh thread's static TLS before and after its
  // first malloc: glibc stores exactly two new pointers, the tcache (whose
  // first bin now holds the chunk we freed) and the arena.
  char* tp = reinterpret_cast<char*>(arch_get_fs());
  size_t words = (g_layout.static_size - tcbo::kSize) / sizeof(uintptr_t);
  auto* base = reinterpret_cast<uintptr_t*>(tp - words * sizeof(uintptr_t));
  constexpr size_t kMaxWords = 8192;  // 64 KiB of static TLS; the probe stack is 256 KiB
  if (words > kMaxWords) {
    raw_print("warning: static TLS too large to probe for glibc's malloc cache; exited threads may leak ~6 KiB each");
    return;
  }
  auto* before = static_cast<uintptr_t*>(__builtin_alloca(words * sizeof(uintptr_t)));
  for (size_t i = 0; i < words; i++) before[i] = base[i];
  void* volatile p = malloc(16);
  free(p);
  ptrdiff_t tcache_off = 0, other_off = 0;
  int changed = 0;
  for (size_t i = 0; i < words; i++) {
    if (before[i] != 0 || base[i] == 0) continue;
    changed++;
    ptrdiff_t off = reinterpret_cast<char*>(&base[i]) - tp;
    auto* cand = reinterpret_cast<const char*>(base[i]);
    if (*reinterpret_cast<const uint16_t*>(cand) == 1 && *reinterpret_cast<void* const*>(cand + 128) == p)
      tcache_off = off;
    else other_off = off;
  }
  if (tcache_off && changed <= 2) {
    g_tcache_off = tcache_off;
    g_arena_off = changed == 2 ? other_off : 0;
  } else {
    raw_print("warning: could not locate glibc's per-thread malloc cache; each exited thread may leak ~6 KiB");
  }
}

}  // namespace mnp
