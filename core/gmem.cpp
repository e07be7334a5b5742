// core/gmem.cpp — G memory and the handle table. See gmem.h.
#include "core/gmem.h"

#include <fcntl.h>
#include <linux/mman.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "core/base.h"
#include "core/futex.h"
#include "core/tcb.h"

namespace mnp {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMinRestStack = 2048;  // stack left below TLS, TCB and G at the least (glibc's rule)
constexpr uintptr_t kEmpty = 0, kTomb = 1, kNativeTag = 2;

size_t round_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

constinit ptrdiff_t g_tls_g_off = 0;  // TP-relative offset of tls_g
constinit bool g_map_limit_reported = false;

// ---- thread ids --------------------------------------------------------------
// A G's id is also what glibc writes as the owner of process-shared mutexes,
// rwlocks (__cur_writer) and robust and PI futex words, and compares with its
// own id to answer EDEADLK, EPERM or a recursive lock. Those objects are seen
// by other processes, so the ids must be unique across processes, as kernel
// tids are: a process-local counter gives the same ids to the Gs of two
// children forked from one parent (or of two unrelated processes), and one
// child's writer then gets EDEADLK from a rwlock the other one's holds.
// Ids are therefore handed out in blocks of kTidBlock from one machine-wide
// counter, a word in the shared file kTidFile (created 0666 by the first
// process; the counter starts at 0 in a fresh file). A process that cannot
// map it counts from a random start instead (collisions become unlikely, not
// impossible). The current block is one word: high half its end, low half
// the next id; a fork child drops its parent's block (gmem_after_fork).
constexpr char kTidFile[] = "/dev/shm/mnpthread-tids";
constexpr uint32_t kTidBlock = 64;
constinit std::atomic<std::atomic<uint32_t>*> g_tid_shared{nullptr};
constinit std::atomic<uint32_t> g_tid_local{0};  // fallback counter
constinit std::atomic<bool> g_tid_init_done{false};
constinit std::atomic<uint64_t> g_tid_block{0};

void tid_counter_init() {
  if (g_tid_init_done.load(std::memory_order_acquire)) return;
  std::atomic<uint32_t>* word = nullptr;
  long fd = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(kTidFile),
                        O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd >= 0) {
    raw_syscall(SYS_fchmod, fd, 0666);  // past the umask; fails harmlessly when not ours
    if (raw_syscall(SYS_ftruncate, fd, kPage) == 0) {
      long r = raw_syscall6(SYS_mmap, 0, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (r >= 0 || r <= -4096) word = reinterpret_cast<std::atomic<uint32_t>*>(r);
    }
    raw_syscall(SYS_close, fd);
  }
  if (!word) {
    uint32_t seed = 0;
    raw_syscall(SYS_getrandom, reinterpret_cast<long>(&seed), sizeof seed, 0);
    g_tid_local.store(seed, std::memory_order_relaxed);
  }
  std::atomic<uint32_t>* expected = nullptr;
  if (word && !g_tid_shared.compare_exchange_strong(expected, word, std::memory_order_acq_rel))
    raw_syscall(SYS_munmap, reinterpret_cast<long>(word), kPage);  // another M mapped it first
  g_tid_init_done.store(true, std::memory_order_release);
}

uint32_t tid_block_start() {
  tid_counter_init();
  std::atomic<uint32_t>* w = g_tid_shared.load(std::memory_order_acquire);
  return (w ? w : &g_tid_local)->fetch_add(kTidBlock, std::memory_order_relaxed);
}

// ---- handle table ----------------------------------------------------------
// Open addressing over TCB addresses (64-byte aligned, so bit 1 tags native
// threads). Readers are lock-free: they load the current table and probe.
// Writers hold g_table_lock; a growing table is copied and published, the old
// one is kept (readers may still be probing it; tables only double).
struct Table {
  size_t cap;  // power of two
  std::atomic<uintptr_t> keys[1];
};
constinit Lock g_table_lock;
constinit std::atomic<Table*> g_table{nullptr};
constinit size_t g_used = 0;  // live + tombstones (lock)
constinit size_t g_live = 0;

size_t hash_key(uintptr_t k) { return static_cast<size_t>((k >> 6) * 0x9E3779B97F4A7C15ULL >> 17); }

Table* table_new(size_t cap) {
  size_t bytes = sizeof(Table) + (cap - 1) * sizeof(std::atomic<uintptr_t>);
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) fatal("cannot allocate the handle table");
  auto* t = reinterpret_cast<Table*>(r);
  t->cap = cap;
  return t;  // anonymous memory is zero: all slots kEmpty
}

void table_insert_locked(Table* t, uintptr_t key) {
  size_t mask = t->cap - 1;
  for (size_t i = hash_key(key & ~uintptr_t{63}) & mask;; i = (i + 1) & mask) {
    uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
    if (k == kEmpty || k == kTomb) {
      t->keys[i].store(key, std::memory_order_release);
      return;
    }
  }
}

void table_add(uintptr_t key) {
  LockGuard lk(g_table_lock);
  Table* t = g_table.load(std::memory_order_relaxed);
  if (!t || (g_used + 1) * 2 > t->cap) {
    size_t cap = t ? t->cap : 1024;
    while ((g_live + 1) * 4 > cap) cap *= 2;
    Table* nt = table_new(cap);
    if (t)
      for (size_t i = 0; i < t->cap; i++) {
        uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
        if (k != kEmpty && k != kTomb) table_insert_locked(nt, k);
      }
    g_used = g_live;
    g_table.store(nt, std::memory_order_release);
    t = nt;
  }
  table_insert_locked(t, key);
  g_used++;
  g_live++;
}

void table_remove(uintptr_t key) {
  LockGuard lk(g_table_lock);
  Table* t = g_table.load(std::memory_order_relaxed);
  if (!t) return;
  size_t mask = t->cap - 1;
  for (size_t i = hash_key(key & ~uintptr_t{63}) & mask;; i = (i + 1) & mask) {
    uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
    if (k == kEmpty) return;
    if (k == key) {
      t->keys[i].store(kTomb, std::memory_order_release);
      g_live--;
      return;
    }
  }
}

bool table_contains(uintptr_t key) {
  Table* t = g_table.load(std::memory_order_acquire);
  if (!t) return false;
  size_t mask = t->cap - 1;
  for (size_t i = hash_key(key & ~uintptr_t{63}) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
    uintptr_t k = t->keys[i].load(std::memory_order_acquire);
    if (k == kEmpty) return false;
    if (k == key) return true;
  }
  return false;
}

constinit G* g_main = nullptr;

}  // namespace

uint32_t gmem_new_tid() {
  uint64_t b = g_tid_block.load(std::memory_order_acquire);
  uint32_t n;
  for (;;) {
    uint32_t next = static_cast<uint32_t>(b), end = static_cast<uint32_t>(b >> 32);
    if (next != end) {
      uint64_t nb = (b & ~uint64_t{0xffffffff}) | static_cast<uint32_t>(next + 1);  // no carry into end
      if (g_tid_block.compare_exchange_weak(b, nb, std::memory_order_acq_rel)) {
        n = next;
        break;
      }
      continue;
    }
    // Empty: take a new block; when another M refilled meanwhile, this one
    // is dropped (ids are plentiful).
    uint32_t start = tid_block_start();
    uint64_t nb = (static_cast<uint64_t>(start + kTidBlock) << 32) | static_cast<uint32_t>(start + 1);
    if (g_tid_block.compare_exchange_strong(b, nb, std::memory_order_acq_rel)) {
      n = start;
      break;
    }
  }
  // Below the futex OWNER_DIED bit (0x40000000): glibc stores the id in
  // robust and PI mutex words.
  return kFakeTidBase + n % 0x1fffffff;
}

void gmem_set_tls_g_at(void* tcb, G* g) {
  if (!g_tls_g_off) g_tls_g_off = reinterpret_cast<char*>(&tls_g) - reinterpret_cast<char*>(arch_get_fs());
  *reinterpret_cast<G**>(static_cast<char*>(tcb) + g_tls_g_off) = g;
}

void gmem_set_tls_g(G* gp) { gmem_set_tls_g_at(gp->tcb, gp); }

G* gmem_alloc(size_t stack_size, size_t guard, void* user_stack, uint32_t tid) {
  if (!g_tls_g_off) g_tls_g_off = reinterpret_cast<char*>(&tls_g) - reinterpret_cast<char*>(arch_get_fs());
  const TlsLayout& tl = tls_layout();
  size_t top_area = round_up(sizeof(G) + tl.static_size + tl.static_align, 64);
  uintptr_t base, end;
  size_t map_size = 0;
  if (user_stack) {
    base = reinterpret_cast<uintptr_t>(user_stack);
    end = base + stack_size;
    guard = 0;
    if (stack_size < top_area + 2 * kPage) return nullptr;
  } else {
    // As glibc sizes a thread's stack: the block is the requested size (down
    // to the TLS alignment) and holds TLS, TCB and G at its top; the guard
    // lies below it. So the distance from the thread's first frame to the
    // guard, and what pthread_getattr_np reports, are what they are natively.
    stack_size &= ~(size_t{tl.static_align} - 1);
    guard = round_up(guard, kPage);
    if (stack_size < top_area + kMinRestStack) return nullptr;
    map_size = round_up(guard + stack_size, kPage);
    long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(map_size), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (r < 0 && r > -4096) return nullptr;
    base = static_cast<uintptr_t>(r);
    end = base + guard + stack_size;
    if (guard && raw_syscall(SYS_mprotect, static_cast<long>(base), static_cast<long>(guard), PROT_NONE) != 0) {
      raw_syscall(SYS_munmap, static_cast<long>(base), static_cast<long>(map_size));
      if (!__atomic_exchange_n(&g_map_limit_reported, true, __ATOMIC_RELAXED))
        raw_print("cannot map another thread stack: the kernel's vm.max_map_count limit is reached "
                  "(each thread needs 2 mappings); pthread_create returns EAGAIN");
      return nullptr;
    }
  }
  uintptr_t tcb_addr = (end - sizeof(G) - tcbo::kSize) & ~(uintptr_t{tl.static_align} - 1);
  void* tcb = reinterpret_cast<void*>(tcb_addr);
  G* gp = new (reinterpret_cast<void*>(tcb_addr + tcbo::kSize)) G();
  gp->tcb = tcb;
  gp->map_base = user_stack ? nullptr : reinterpret_cast<void*>(base);
  gp->map_size = map_size;
  gp->user_stack = user_stack != nullptr;
  gp->guard_size = guard;
  gp->stack_lo = reinterpret_cast<void*>(base + guard);
  gp->stack_size = end - (base + guard);
  gp->fake_tid = tid ? tid : gmem_new_tid();
  if (!tcb_init_fresh(tcb, reinterpret_cast<void*>(base), end - base, guard, gp->fake_tid)) {
    if (!user_stack) raw_syscall(SYS_munmap, static_cast<long>(base), static_cast<long>(map_size));
    return nullptr;
  }
  table_add(tcb_addr);
  return gp;
}

// ---- deferred unmapping -----------------------------------------------------
// Some code reads another M's curg and dereferences it without owning it
// (sysmon's preemption mark, the signal kicks, the scheduler trace). The G
// may exit and be reaped meanwhile; a cached G stays mapped, but one with
// its own stack size is unmapped, and the reader would touch freed memory
// (sysmon died of SIGSEGV in detect_blocked about one chain run in 40 at
// 1 P). Readers bracket the read and every use of the G in
// gmem_peek_begin/end; a G to unmap goes on g_unmap_list and is unmapped
// only when no peek is in progress after it was put there. Every M clears
// its curg before its G can be reaped, so a peek that starts later cannot
// reach a listed G: seeing g_peekers == 0 after the push means every peek
// that could hold it has ended.
namespace {
constinit std::atomic<int> g_peekers{0};
constinit std::atomic<G*> g_unmap_list{nullptr};

void unmap_list_push(G* first, G* last) {
  G* head = g_unmap_list.load(std::memory_order_relaxed);
  do last->schedlink = head;
  while (!g_unmap_list.compare_exchange_weak(head, first, std::memory_order_seq_cst, std::memory_order_relaxed));
}

}  // namespace

void gmem_peek_begin() { g_peekers.fetch_add(1, std::memory_order_seq_cst); }
void gmem_peek_end() { g_peekers.fetch_sub(1, std::memory_order_release); }

void gmem_reclaim() {
  if (!g_unmap_list.load(std::memory_order_relaxed)) return;
  G* list = g_unmap_list.exchange(nullptr, std::memory_order_seq_cst);
  if (!list) return;
  if (g_peekers.load(std::memory_order_seq_cst) != 0) {
    G* last = list;
    while (last->schedlink) last = last->schedlink;
    unmap_list_push(list, last);
    return;
  }
  while (list) {
    G* next = list->schedlink;
    void* base = list->map_base;
    size_t size = list->map_size;
    raw_syscall(SYS_munmap, reinterpret_cast<long>(base), static_cast<long>(size));
    list = next;
  }
}

void gmem_free(G* gp) {
  san_unpoison(gp->stack_lo, static_cast<size_t>(static_cast<char*>(gmem_stack_top(gp)) -
                                                 static_cast<char*>(gp->stack_lo)));
  uintptr_t tcb = reinterpret_cast<uintptr_t>(gp->tcb);
  table_remove(tcb);
  tcb_release(gp->tcb);
  if (gp->map_base) {
    unmap_list_push(gp, gp);
    gmem_reclaim();
  }
}

size_t gmem_min_stack() {
  const TlsLayout& tl = tls_layout();
  return round_up(sizeof(G) + tl.static_size + tl.static_align, 64) + kMinRestStack;
}

void* gmem_stack_top(G* gp) {
  // Below the static TLS block, which sits below the TCB.
  uintptr_t tls_lo = reinterpret_cast<uintptr_t>(gp->tcb) - (tls_layout().static_size - tcbo::kSize);
  return reinterpret_cast<void*>((tls_lo - 64) & ~uintptr_t{63});
}

void gmem_register_main(G* mg) { g_main = mg; }

void gmem_after_fork(G* self) {
  new (&g_table_lock) Lock();
  g_tid_block.store(0, std::memory_order_relaxed);  // the parent goes on using its block
  if (!g_tid_shared.load(std::memory_order_relaxed)) g_tid_init_done.store(false, std::memory_order_relaxed);  // reseed
  tcb_after_fork();
  // Only the forking thread exists in the child. Its handle, and those of
  // free Gs (kGIdle: cached for reuse, the child's own to hand out), stay;
  // every other G, g0 and pre-runtime thread of the parent leaves the
  // table, so its handle is ESRCH, its id names no thread (gmem_with_tid)
  // and dumps and signal scans no longer visit it. Their memory stays
  // mapped and unused, as glibc leaves the other threads' stacks in its
  // cache.
  Table* old = g_table.load(std::memory_order_relaxed);
  Table* nt = table_new(old ? old->cap : 1024);
  g_used = g_live = 0;
  if (old)
    for (size_t i = 0; i < old->cap; i++) {
      uintptr_t k = old->keys[i].load(std::memory_order_relaxed);
      if (k == kEmpty || k == kTomb || (k & kNativeTag)) continue;
      G* gp = reinterpret_cast<G*>(k + tcbo::kSize);
      if (gp != self && (gp->is_g0 || gp->status.load(std::memory_order_relaxed) != kGIdle)) continue;
      table_insert_locked(nt, k);
      g_used++;
      g_live++;
    }
  g_table.store(nt, std::memory_order_release);
  // A fork from another thread than main: main is gone, and this G is the
  // child's first thread (its id is the child's pid, like main's).
  if (self && !self->is_g0) g_main = self;
}

namespace detail {
void for_each_tcb(void (*cb)(void*, void*), void* ctx) {
  LockGuard lk(g_table_lock);
  Table* t = g_table.load(std::memory_order_relaxed);
  if (!t) return;
  for (size_t i = 0; i < t->cap; i++) {
    uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
    if (k != kEmpty && k != kTomb && !(k & kNativeTag)) cb(ctx, reinterpret_cast<void*>(k));
  }
}

// A linear scan: ids are looked up only by the calls that take one
// (tgkill, sched_*, ...), never on a hot path, and a second table keyed by
// id would have to be kept in step with this one.
bool with_tid(uint32_t tid, void (*cb)(void*, G*), void* ctx) {
  auto live = [tid](G* gp) {
    uint32_t st = gp->status.load(std::memory_order_acquire);
    return gp->fake_tid == tid && st != kGIdle && st != kGDead;
  };
  LockGuard lk(g_table_lock);
  if (g_main && live(g_main)) {
    cb(ctx, g_main);
    return true;
  }
  Table* t = g_table.load(std::memory_order_relaxed);
  if (!t) return false;
  for (size_t i = 0; i < t->cap; i++) {
    uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
    if (k == kEmpty || k == kTomb || (k & kNativeTag)) continue;
    G* gp = reinterpret_cast<G*>(k + tcbo::kSize);
    if (gp->is_g0 || !live(gp)) continue;
    cb(ctx, gp);
    return true;
  }
  return false;
}
}  // namespace detail

int32_t gmem_global_cache_max() { return 16384; }

void gmem_trim(G* gp) {
  if (!gp->map_base) return;
  uintptr_t lo = reinterpret_cast<uintptr_t>(gp->stack_lo);
  uintptr_t hi = reinterpret_cast<uintptr_t>(gmem_stack_top(gp)) & ~uintptr_t{kPage - 1};
  if (hi > lo) raw_syscall(SYS_madvise, static_cast<long>(lo), static_cast<long>(hi - lo), MADV_DONTNEED);
}

void handle_register_native(uintptr_t h) { table_add(h | kNativeTag); }
void handle_unregister_native(uintptr_t h) { table_remove(h | kNativeTag); }

HandleKind handle_kind(uintptr_t h, G** out) {
  *out = nullptr;
  if (h == 0 || (h & 63) != 0) return HandleKind::kNone;
  if (g_main && h == reinterpret_cast<uintptr_t>(g_main->tcb)) {
    *out = g_main;
    return HandleKind::kG;
  }
  if (table_contains(h)) {
    *out = reinterpret_cast<G*>(h + tcbo::kSize);
    return HandleKind::kG;
  }
  if (table_contains(h | kNativeTag)) return HandleKind::kNative;
  return HandleKind::kNone;
}

G* g_from_handle(uintptr_t h) {
  G* g;
  return handle_kind(h, &g) == HandleKind::kG ? g : nullptr;
}

}  // namespace mnp
