// core/gmem.cpp — G memory and the handle table. See gmem.h; the sections
// below (handle table, stack slabs, deferred unmapping, idle shrink) each
// open with their design and protocol; docs/ARCHITECTURE.md, "Life of a G",
// "Memory", is the overview.
#include "core/gmem.h"

#include <fcntl.h>
#include <linux/mman.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "arch/x86_64/machine.h"
#include "core/base.h"
#include "core/compact.h"
#include "core/futex.h"
#include "core/poke.h"
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
// threads). Readers are lock-free: they load the table's generation and the
// current table, and probe. Writers hold g_table_lock. A table that grows
// past half full, or shrinks to a sixteenth (a burst of threads is over), is
// copied to one of the right size, which is published with a new
// generation; the old one is retired: its pages go back (MADV_DONTNEED: it
// stays mapped and reads as zeros, that is as empty; where the memory is
// locked the runtime writes the zeros) and it is kept for
// reuse at that size (one per size, so a process never holds more than 64).
// A reader that misses retries when the generation moved meanwhile: it may
// have probed a retired table, or one being reused. A zero capacity is a
// retired table too.
struct Table {
  size_t cap;  // power of two
  std::atomic<uintptr_t> keys[1];
};
constexpr size_t kTableMin = 1024;
constinit Lock g_table_lock;
constinit std::atomic<Table*> g_table{nullptr};
constinit std::atomic<uint64_t> g_table_gen{0};
constinit Table* g_table_spare[64] = {};  // retired tables by log2(cap) (lock)
constinit size_t g_used = 0;              // live + tombstones (lock)
constinit size_t g_live = 0;

size_t hash_key(uintptr_t k) { return static_cast<size_t>((k >> 6) * 0x9E3779B97F4A7C15ULL >> 17); }
size_t table_bytes(size_t cap) { return sizeof(Table) + (cap - 1) * sizeof(std::atomic<uintptr_t>); }

Table* table_new(size_t cap) {
  int lg = __builtin_ctzll(cap);
  if (Table* t = g_table_spare[lg]) {  // zeroed when it was retired
    g_table_spare[lg] = nullptr;
    t->cap = cap;
    return t;
  }
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(table_bytes(cap)), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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

// Copies the live keys of the current table into a new one of cap slots,
// publishes it and retires the old one.
void table_resize_locked(size_t cap) {
  Table* t = g_table.load(std::memory_order_relaxed);
  Table* nt = table_new(cap);
  if (t)
    for (size_t i = 0; i < t->cap; i++) {
      uintptr_t k = t->keys[i].load(std::memory_order_relaxed);
      if (k != kEmpty && k != kTomb) table_insert_locked(nt, k);
    }
  g_used = g_live;
  g_table.store(nt, std::memory_order_release);
  g_table_gen.fetch_add(1, std::memory_order_seq_cst);
  if (!t) return;
  int lg = __builtin_ctzll(t->cap);
  size_t bytes = table_bytes(t->cap);
  if (raw_syscall(SYS_madvise, reinterpret_cast<long>(t), static_cast<long>(bytes), MADV_DONTNEED) != 0) {
    // Locked memory (mlockall) refuses MADV_DONTNEED with EINVAL: zero it
    // by hand, or its next use would hold the keys of Gs freed since.
    __atomic_store_n(&t->cap, size_t{0}, __ATOMIC_RELAXED);
    for (size_t i = 0; i < size_t{1} << lg; i++) t->keys[i].store(kEmpty, std::memory_order_relaxed);
  }
  if (!g_table_spare[lg]) g_table_spare[lg] = t;
  else raw_syscall(SYS_munmap, reinterpret_cast<long>(t), static_cast<long>(bytes));  // cannot happen: one per size
}

void table_add(uintptr_t key) {
  LockGuard lk(g_table_lock);
  Table* t = g_table.load(std::memory_order_relaxed);
  if (!t || (g_used + 1) * 2 > t->cap) {
    size_t cap = t ? t->cap : kTableMin;
    while ((g_live + 1) * 4 > cap) cap *= 2;
    table_resize_locked(cap);
    t = g_table.load(std::memory_order_relaxed);
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
      break;
    }
  }
  if (t->cap > kTableMin && g_live * 16 < t->cap) {
    size_t cap = kTableMin;
    while (g_live * 4 > cap) cap *= 2;
    table_resize_locked(cap);
  }
}

bool table_contains(uintptr_t key) {
  for (;;) {
    uint64_t gen = g_table_gen.load(std::memory_order_seq_cst);
    Table* t = g_table.load(std::memory_order_acquire);
    if (!t) return false;
    size_t cap = t->cap;
    if (cap != 0) {
      size_t mask = cap - 1;
      for (size_t i = hash_key(key & ~uintptr_t{63}) & mask, n = 0; n < cap; i = (i + 1) & mask, n++) {
        uintptr_t k = t->keys[i].load(std::memory_order_acquire);
        if (k == kEmpty) break;
        if (k == key) return true;
      }
    }
    if (g_table_gen.load(std::memory_order_seq_cst) == gen && cap != 0) return false;
  }
}

MNP_START_DATA constinit G* g_main = nullptr;

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
  // robust and PI mutex words. The span keeps every id's CPU clock id
  // distinct (core/tcb.h): with a wider one the machine-wide counter, once
  // past 264 M ids (this project's VM got there), gave new threads clock
  // ids that named no G, and their clocks failed with EINVAL.
  return kFakeTidBase + n % kFakeTidSpan;
}

void gmem_set_tls_g_at(void* tcb, G* g) {
  if (!g_tls_g_off) g_tls_g_off = reinterpret_cast<char*>(&tls_g) - reinterpret_cast<char*>(arch_get_fs());
  *reinterpret_cast<G**>(static_cast<char*>(tcb) + g_tls_g_off) = g;
}

void gmem_set_tls_g(G* gp) { gmem_set_tls_g_at(gp->tcb, gp); }

// ---- stack slabs ------------------------------------------------------------
// A G's memory (guard, stack, TLS, TCB, G) is one region of a slab: a large
// anonymous mapping holding up to kSlabMaxSlots regions of one size, each
// with its guard made by madvise(MADV_GUARD_INSTALL) (Linux 6.13+) when the
// slot is first handed out (installing every guard of a fresh 64 MiB slab at
// once cost about 2 ms here, for a process that may never make a thread).
// Guard regions do not split the mapping, so a process needs one mapping per slab
// instead of two per thread, and vm.max_map_count (65,530 by default) no
// longer caps it at about 32k threads. A guard survives MADV_DONTNEED and
// MADV_FREE, and faults (SIGSEGV) like a PROT_NONE page.
//
// Slabs of a size class sit on the class's "partial" list while they have a
// free slot; a freed region's pages go back with MADV_DONTNEED (the guard
// stays) and the slot is free for the next G of that size. An emptied slab
// is unmapped unless it is its class's only empty one (hysteresis: a thread
// created and ended over and over at a slab's edge does not map and unmap a
// slab each time).
//
// Where guard regions are missing (an older kernel: EINVAL; a locked
// mapping: mlockall(MCL_FUTURE)) or MNP_DEBUG=stackslabs=0, and for more
// than kSlabClasses distinct sizes, a G gets a mapping of its own with a
// PROT_NONE guard (two mappings).
//
// All under g_slab_lock. Descriptors come from a pool of raw mappings and are
// never unmapped.
namespace {

constexpr uint32_t kSlabMaxSlots = 512;
constexpr size_t kSlabTargetBytes = size_t{64} << 20;
constexpr int kSlabClasses = 8;
constexpr int kMadvGuardInstall = 102;  // MADV_GUARD_INSTALL, absent from older headers

struct Slab {
  uintptr_t base;
  size_t region;  // bytes per slot (guard included)
  uint32_t nslots, nfree;
  int cls;
  bool dying;         // being unmapped by slab_release_batch
  uint32_t uffd_gen;  // == g_uffd_gen: registered with this process's userfaultfd (core/compact.h)
  Slab *prev, *next;  // the class's partial list (nfree > 0)
  uint64_t used[kSlabMaxSlots / 64];
  uint64_t guarded[kSlabMaxSlots / 64];  // the slot's guard is installed
};

struct SlabClass {
  size_t region = 0;  // 0: unused class
  size_t guard = 0;
  Slab* partial = nullptr;
  uint32_t nempty = 0;  // slabs with every slot free
  uint32_t nslabs = 0;
};

enum : uint32_t { kGuardUnknown, kGuardRegions, kGuardNone };

constinit Lock g_slab_lock;
constinit SlabClass g_classes[kSlabClasses];
constinit Slab* g_slab_pool = nullptr;  // free descriptors (next)
constinit uint32_t g_guard_mode = kGuardUnknown;
// Bumped in a fork child: the parent's registrations are not the child's
// (a userfaultfd does not follow a fork), so every slab counts as new.
constinit uint32_t g_uffd_gen = 1;
constinit bool g_uffd_any = false;  // some slab has the current uffd_gen

void report_map_limit(const char* why) {
  if (__atomic_exchange_n(&g_map_limit_reported, true, __ATOMIC_RELAXED)) return;
  raw_print({"cannot map another thread stack: the kernel's vm.max_map_count limit is reached ", why,
             "; pthread_create returns EAGAIN"});
}

long map_anon(size_t bytes) {
  return raw_syscall6(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
}
bool map_failed(long r) { return r < 0 && r > -4096; }

// Whether the kernel grants a stack of `bytes` mapped as glibc maps one:
// accounted (no MAP_NORESERVE), so the overcommit policy decides, and with
// the default heuristic a stack larger than RAM and swap together fails
// (pthread_create: EAGAIN). Slabs are mapped MAP_NORESERVE and never ask:
// a 1 TiB stack was granted. Nothing is touched, so the probe costs two
// system calls; made only for stacks larger than a slab (kSlabTargetBytes).
bool commit_would_pass(size_t bytes) {
  long r =
      raw_syscall6(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map_failed(r)) return false;
  raw_syscall(SYS_munmap, r, static_cast<long>(bytes));
  return true;
}

// Descriptors are carved from 64 KiB chunks as needed, so a process with one
// slab touches one page of them, not the whole chunk.
Slab* slab_desc_get_locked() {
  static constinit char* chunk_next = nullptr;
  static constinit char* chunk_end = nullptr;
  if (Slab* s = g_slab_pool) {
    g_slab_pool = s->next;
    return s;
  }
  if (chunk_end - chunk_next < static_cast<ptrdiff_t>(sizeof(Slab))) {
    constexpr size_t kChunk = 64 * 1024;
    long r = raw_syscall6(SYS_mmap, 0, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_failed(r)) return nullptr;
    chunk_next = reinterpret_cast<char*>(r);
    chunk_end = chunk_next + kChunk;
  }
  auto* s = reinterpret_cast<Slab*>(chunk_next);
  chunk_next += sizeof(Slab);
  return s;
}

void partial_push_locked(SlabClass* c, Slab* s) {
  s->prev = nullptr;
  s->next = c->partial;
  if (c->partial) c->partial->prev = s;
  c->partial = s;
}

void partial_unlink_locked(SlabClass* c, Slab* s) {
  if (s->prev) s->prev->next = s->next;
  else c->partial = s->next;
  if (s->next) s->next->prev = s->prev;
}

// Installs the guard of slot i of a slab of class c. 0, or the negated errno:
// EINVAL means no guard regions here (a kernel before 6.13, or a locked
// mapping); anything else (ENOMEM) concerns this call only.
long slot_guard_install(uintptr_t base, size_t region, size_t guard, uint32_t i) {
  return raw_syscall(SYS_madvise, static_cast<long>(base + i * region), static_cast<long>(guard), kMadvGuardInstall);
}

// A new slab for class c; null if the map failed or guard regions are
// unavailable (g_guard_mode then says which). While that is unknown, slot 0's
// guard is installed here as the test; the others when first handed out.
Slab* slab_new_locked(SlabClass* c, int cls) {
  // The first slabs of a size are small (a process with a few threads
  // reserves little address space), later ones up to 16 times bigger
  // (fewer mappings, and fewer calls to give pages back).
  uint32_t grow = c->nslabs < 4 ? c->nslabs : 4;
  uint32_t n = static_cast<uint32_t>((kSlabTargetBytes << grow) / c->region);
  if (n < 1) n = 1;
  if (n > kSlabMaxSlots) n = kSlabMaxSlots;
  long r = map_anon(n * c->region);
  if (map_failed(r)) {
    if (r == -ENOMEM) report_map_limit("or the address space is full (stacks are carved from shared slabs)");
    return nullptr;
  }
  auto base = static_cast<uintptr_t>(r);
  bool guard0 = false;
  if (c->guard && g_guard_mode == kGuardUnknown) {
    long g = slot_guard_install(base, c->region, c->guard, 0);
    if (g != 0) {
      raw_syscall(SYS_munmap, r, static_cast<long>(n * c->region));
      if (g == -EINVAL) g_guard_mode = kGuardNone;
      return nullptr;
    }
    guard0 = true;
  }
  g_guard_mode = kGuardRegions;
  Slab* s = slab_desc_get_locked();
  if (!s) {
    raw_syscall(SYS_munmap, r, static_cast<long>(n * c->region));
    return nullptr;
  }
  *s = Slab{};
  s->base = base;
  s->region = c->region;
  s->nslots = s->nfree = n;
  s->cls = cls;
  if (!c->guard)
    for (auto& w : s->guarded) w = ~uint64_t{0};  // no guards to install
  else if (guard0) s->guarded[0] = 1;
  c->nslabs++;
  partial_push_locked(c, s);
  c->nempty++;
  return s;
}

// A region of region bytes whose lowest guard bytes fault, from a slab; 0
// when slabs cannot serve it (the caller maps one of its own).
uintptr_t slab_alloc(size_t region, size_t guard, Slab** out, bool* registered) {
  if (!config().stack_slabs || __atomic_load_n(&g_guard_mode, __ATOMIC_RELAXED) == kGuardNone) return 0;
  LockGuard lk(g_slab_lock);
  int cls = -1;
  for (int i = 0; i < kSlabClasses && cls < 0; i++) {
    if (g_classes[i].region == region && g_classes[i].guard == guard) cls = i;
    else if (g_classes[i].region == 0) {
      g_classes[i].region = region;
      g_classes[i].guard = guard;
      cls = i;
    }
  }
  if (cls < 0) return 0;
  SlabClass* c = &g_classes[cls];
  Slab* s = c->partial;
  if (!s && !(s = slab_new_locked(c, cls))) return 0;
  uint32_t slot = 0;
  for (uint32_t w = 0; w < kSlabMaxSlots / 64; w++) {
    if (~s->used[w] == 0) continue;
    slot = w * 64 + static_cast<uint32_t>(__builtin_ctzll(~s->used[w]));
    break;
  }
  if (slot >= s->nslots) fatal("slab_alloc: no free slot in a partial slab");
  uint64_t bit = uint64_t{1} << (slot % 64);
  if (!(s->guarded[slot / 64] & bit)) {
    long g = slot_guard_install(s->base, s->region, c->guard, slot);
    if (g != 0) {
      // The caller maps a region of its own; after EINVAL (the process
      // locked its memory since) every later one does.
      if (g == -EINVAL) __atomic_store_n(&g_guard_mode, kGuardNone, __ATOMIC_RELAXED);
      return 0;
    }
    s->guarded[slot / 64] |= bit;
  }
  if (s->nfree == s->nslots) c->nempty--;
  s->used[slot / 64] |= bit;
  if (--s->nfree == 0) partial_unlink_locked(c, s);
  *out = s;
  *registered = s->uffd_gen == g_uffd_gen;
  return s->base + slot * s->region;
}

// Gives the regions at bases[i] (of slabs[i]) back: their pages to the
// kernel, their slots to the slabs. The memory stays mapped (and guarded)
// while the slab lives; a slab the batch empties is unmapped instead,
// unless it is its class's only empty one.
//
// Every madvise and munmap here costs a TLB shootdown on the CPUs running
// this process (in a loaded virtual machine, 0.2-1 ms each: freeing 10,000
// stacks one call each took seconds), so the batch is sorted by address and
// neighbours share one call (a guard survives MADV_DONTNEED). A slot is
// marked free only after its pages are gone: the next G to get it must not
// lose what it wrote to a madvise meant for its predecessor. A slab to be
// unmapped leaves the partial list first, so nobody takes a slot of it.
void slab_release_batch(uintptr_t* bases, Slab** slabs, int n) {
  // Insertion sort: n is small, and often nearly sorted already.
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && bases[j - 1] > bases[j]; j--) {
      uintptr_t b = bases[j];
      bases[j] = bases[j - 1];
      bases[j - 1] = b;
      Slab* s = slabs[j];
      slabs[j] = slabs[j - 1];
      slabs[j - 1] = s;
    }
  auto slot_of = [](Slab* s, uintptr_t base) { return static_cast<uint32_t>((base - s->base) / s->region); };
  auto clear_slot = [&](Slab* s, uintptr_t base) {
    uint32_t slot = slot_of(s, base);
    uint64_t bit = uint64_t{1} << (slot % 64);
    if (!(s->used[slot / 64] & bit)) fatal("slab_release: slot is not in use");
    s->used[slot / 64] &= ~bit;
  };
  // Phase 1: which slabs this batch empties, and which of them go.
  {
    LockGuard lk(g_slab_lock);
    for (int i = 0; i < n;) {
      Slab* s = slabs[i];
      int j = i;
      while (j < n && slabs[j] == s) j++;  // sorted: a slab's regions are together
      s->dying = false;
      SlabClass* c = &g_classes[s->cls];
      if (s->nfree + static_cast<uint32_t>(j - i) == s->nslots && c->nempty > 0) {
        s->dying = true;
        if (s->nfree) partial_unlink_locked(c, s);
        for (int k = i; k < j; k++) clear_slot(s, bases[k]);
        s->nfree = s->nslots;
      }
      i = j;
    }
  }
  // Phase 2: pages back, one call per run of neighbours.
  for (int i = 0; i < n;) {
    bool dying = slabs[i]->dying;
    uintptr_t lo = dying ? slabs[i]->base : bases[i];
    uintptr_t hi = dying ? lo + slabs[i]->nslots * slabs[i]->region : bases[i] + slabs[i]->region;
    int j = i + 1;
    for (;;) {
      while (j < n && slabs[j] == slabs[j - 1] && dying) j++;  // the rest of a dying slab
      if (j >= n || slabs[j]->dying != dying) break;
      uintptr_t nlo = dying ? slabs[j]->base : bases[j];
      if (nlo != hi) break;
      hi = dying ? nlo + slabs[j]->nslots * slabs[j]->region : nlo + slabs[j]->region;
      j++;
    }
    if (dying) raw_syscall(SYS_munmap, static_cast<long>(lo), static_cast<long>(hi - lo));
    else raw_syscall(SYS_madvise, static_cast<long>(lo), static_cast<long>(hi - lo), MADV_DONTNEED);
    i = j;
  }
  // Phase 3: the slots (and the dead slabs' descriptors) are free.
  LockGuard lk(g_slab_lock);
  for (int i = 0; i < n; i++) {
    Slab* s = slabs[i];
    if (s->dying) {
      if (i + 1 < n && slabs[i + 1] == s) continue;
      s->dying = false;
      g_classes[s->cls].nslabs--;
      s->next = g_slab_pool;
      g_slab_pool = s;
      continue;
    }
    SlabClass* c = &g_classes[s->cls];
    clear_slot(s, bases[i]);
    if (s->nfree++ == 0) partial_push_locked(c, s);
    if (s->nfree == s->nslots) c->nempty++;
  }
}

}  // namespace

G* gmem_alloc(size_t stack_size, size_t guard, void* user_stack, uint32_t tid) {
  if (!g_tls_g_off) g_tls_g_off = reinterpret_cast<char*>(&tls_g) - reinterpret_cast<char*>(arch_get_fs());
  const TlsLayout& tl = tls_layout();
  size_t top_area = round_up(sizeof(G) + tl.static_size + tl.static_align, 64);
  uintptr_t base, end;
  size_t map_size = 0;
  Slab* slab = nullptr;
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
    if (map_size > kSlabTargetBytes && !commit_would_pass(map_size)) return nullptr;
    bool registered = false;
    base = slab_alloc(map_size, guard, &slab, &registered);
    // A slab registered for compaction has its missing pages filled by the
    // handler thread, a round trip per page: the pages this G touches first
    // (TLS, TCB, G and its first frames) are filled here, directly.
    if (registered) {
      uintptr_t hi = base + map_size;
      compact_prefill(hi - round_up(top_area + kPage, kPage), hi);
    }
    if (!base) {
      long r = map_anon(map_size);
      if (map_failed(r)) return nullptr;
      base = static_cast<uintptr_t>(r);
      if (guard && raw_syscall(SYS_mprotect, static_cast<long>(base), static_cast<long>(guard), PROT_NONE) != 0) {
        raw_syscall(SYS_munmap, static_cast<long>(base), static_cast<long>(map_size));
        report_map_limit(g_guard_mode == kGuardNone
                             ? "(each thread needs 2 mappings: this kernel has no MADV_GUARD_INSTALL, Linux 6.13+)"
                             : "(each thread needs 2 mappings)");
        return nullptr;
      }
    }
    end = base + guard + stack_size;
  }
  uintptr_t tcb_addr = (end - sizeof(G) - tcbo::kSize) & ~(uintptr_t{tl.static_align} - 1);
  void* tcb = reinterpret_cast<void*>(tcb_addr);
  G* gp = new (reinterpret_cast<void*>(tcb_addr + tcbo::kSize)) G();
  gp->tcb = tcb;
  gp->map_base = user_stack ? nullptr : reinterpret_cast<void*>(base);
  gp->map_size = map_size;
  gp->slab = slab;
  gp->user_stack = user_stack != nullptr;
  gp->guard_size = guard;
  gp->stack_lo = reinterpret_cast<void*>(base + guard);
  gp->stack_size = end - (base + guard);
  gp->fake_tid = tid ? tid : gmem_new_tid();
  if (!tcb_init_fresh(tcb, reinterpret_cast<void*>(base), end - base, guard, gp->fake_tid)) {
    if (slab) slab_release_batch(&base, &slab, 1);
    else if (!user_stack) raw_syscall(SYS_munmap, static_cast<long>(base), static_cast<long>(map_size));
    return nullptr;
  }
  table_add(tcb_addr);
  return gp;
}

bool gmem_layout_matches(const G* gp, size_t stack_size, size_t guard) {
  return gp->map_base && gp->stack_size == (stack_size & ~(size_t{tls_layout().static_align} - 1)) &&
         gp->guard_size == round_up(guard, kPage);
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

bool gmem_reclaim() {
  if (!g_unmap_list.load(std::memory_order_relaxed)) return false;
  G* list = g_unmap_list.exchange(nullptr, std::memory_order_seq_cst);
  if (!list) return false;
  if (g_peekers.load(std::memory_order_seq_cst) != 0) {
    G* last = list;
    while (last->schedlink) last = last->schedlink;
    unmap_list_push(list, last);
    return true;
  }
  // Slab regions are given back in batches: sorted by address, neighbours
  // coalesced (guards survive MADV_DONTNEED), one madvise per run. Each
  // madvise costs a TLB shootdown on every CPU running this process, which
  // in a virtual machine under load took 0.6 ms: freeing 10,000 stacks one
  // by one took seconds.
  constexpr int kBatch = kReclaimBatch;
  constexpr int kMaxPerCall = 8 * kBatch;  // the caller (sysmon) has other work: the rest next time
  uintptr_t bases[kBatch];
  Slab* slabs[kBatch];
  int n = 0, done = 0;
  while (list) {
    if (done++ == kMaxPerCall) {
      G* last = list;
      while (last->schedlink) last = last->schedlink;
      unmap_list_push(list, last);
      break;
    }
    G* next = list->schedlink;
    if (auto* s = static_cast<Slab*>(list->slab)) {
      bases[n] = reinterpret_cast<uintptr_t>(list->map_base);
      slabs[n++] = s;
      if (n == kBatch) {
        slab_release_batch(bases, slabs, n);
        n = 0;
      }
    } else {
      raw_syscall(SYS_munmap, reinterpret_cast<long>(list->map_base), static_cast<long>(list->map_size));
    }
    list = next;
  }
  if (n) slab_release_batch(bases, slabs, n);
  return list != nullptr;
}

void gmem_free_deferred(G* gp) {
  san_unpoison(gp->stack_lo,
               static_cast<size_t>(static_cast<char*>(gmem_stack_top(gp)) - static_cast<char*>(gp->stack_lo)));
  uintptr_t tcb = reinterpret_cast<uintptr_t>(gp->tcb);
  table_remove(tcb);
  tcb_release(gp->tcb);
  if (gp->map_base) unmap_list_push(gp, gp);
}

void gmem_free_batched(G* gp) {
  // Counted here only: gmem_reclaim empties the list whoever calls it, and
  // a count left over just makes the next batch come sooner.
  static constinit std::atomic<uint32_t> deferred{0};
  gmem_free_deferred(gp);
  if (deferred.fetch_add(1, std::memory_order_relaxed) % kReclaimBatch == kReclaimBatch - 1) gmem_reclaim();
}

void gmem_free(G* gp) {
  gmem_free_deferred(gp);
  gmem_reclaim();
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

MNP_STARTUP void gmem_register_main(G* mg) { g_main = mg; }

MNP_STARTUP void gmem_after_fork(G* self) {
  g_table_lock.reset_in_child();
  g_slab_lock.reset_in_child();
  // Slabs registered with the parent's userfaultfd are not with the child's.
  if (g_uffd_any) {
    g_uffd_gen++;
    g_uffd_any = false;
  }
  // Peeks other threads had begun (sysmon's shrink walk among them) end
  // with them: left counted, nothing freed in the child would be given back.
  store_changed(g_peekers, 0);
  store_changed(g_tid_block, 0);  // the parent goes on using its block
  if (!g_tid_shared.load(std::memory_order_relaxed)) store_changed(g_tid_init_done, false);  // reseed
  tcb_after_fork();
  // Only the forking thread exists in the child. Its handle, and those of
  // free Gs (kGIdle: cached for reuse, the child's own to hand out), stay;
  // every other G, g0 and pre-runtime thread of the parent leaves the
  // table, so its handle is ESRCH, its id names no thread (gmem_with_tid)
  // and dumps and signal scans no longer visit it. Their memory stays
  // mapped and unused, as glibc leaves the other threads' stacks in its
  // cache.
  // No table: no G was ever made, and the child makes one with its first.
  Table* old = g_table.load(std::memory_order_relaxed);
  store_changed(g_used, 0);
  store_changed(g_live, 0);
  if (old) {
    Table* nt = table_new(old->cap);
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
  }
  // A fork from another thread than main: main is gone, and this G is the
  // child's first thread (its id is the child's pid, like main's).
  if (self && !self->is_g0) store_changed(g_main, self);
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

// ---- idle shrink --------------------------------------------------------------
// A G that has been parked a while keeps resident the stack pages it
// touched at its deepest (a printf, a resolver call, a deep recursion long
// returned from), though nothing below its saved stack pointer is live: the
// x86-64 ABI lets code use only the 128-byte red zone below %rsp, and a
// parked G is stopped in mnp_ctx_switch, which is no leaf. Every
// kShrinkScanNs (or 20 times what the last scan took, if more) sysmon walks
// the handle table: a parked G seen with the same park_time as on its
// previous look (parked for a whole period, at least) gets the pages
// between its guard and kShrinkKeep below its saved stack pointer dropped
// (MADV_DONTNEED: the addresses stay, a later touch gets a zero page, as
// a fresh stack has). mincore first: the madvise costs a TLB shootdown,
// worth paying only for pages that are there.
//
// Left alone: the main G (the process stack), g0s, stacks the program gave
// (pthread_attr_setstack: its memory, perhaps shared or file-backed), and
// a G parked inside a handler the kernel ran (G::in_handler: the handler
// may be on a sigaltstack inside this very stack, above live frames of the
// code it interrupted). Kept too: the pages of an alternate signal stack
// the G enabled inside its own stack (G::altstack_lo: a handler may be
// parked there while the G waits). Frames, TCB and static TLS stay here;
// where a userfaultfd serves faults, a G parked a whole period is compacted
// instead (its live top copied out, the pages given back, any touch
// bringing them back: batch_flush, core/compact.h), its dead stack dropped
// with it.
//
// sysmon keeps a deadline while the last walk saw Gs to look at again or
// some P parked a G since (P::parks): an idle process, whose sysmon sleeps
// without one, still gets its parked Gs shrunk, and then sleeps for good.
//
// Protocol with the resumer. sysmon CASes G::shrink None -> Busy, then
// checks that the G is still Waiting in the same park; the resumer moves
// the status to Running (a CAS, after ready's Waiting -> Runnable) and then
// loads G::shrink (gmem_resume). Both pairs are seq_cst, so either sysmon
// sees the status moved (and puts None back) or the resumer sees Busy and
// waits for Done before it switches to the G's stack. The resumer puts
// None back. The walk runs inside a peek (gmem_peek_begin), so no G it
// reaches through the table is given back meanwhile.
namespace {
constexpr int64_t kShrinkScanNs = 100 * 1000 * 1000;
constexpr uintptr_t kShrinkKeep = 256;    // below the saved stack pointer: red zone and more
constinit int64_t g_shrink_next = 0;      // sysmon
constinit bool g_shrink_pending = false;  // sysmon: the last walk saw Gs to look at again
constinit uint64_t g_shrink_parks = 0;    // sysmon: sum of P::parks at the last walk
// A walk stopped half-way (kShrinkBudgetNs of page dropping spent) goes on
// from g_shrink_pos at sysmon's next round.
constexpr int64_t kShrinkBudgetNs = 2 * 1000 * 1000;
constinit size_t g_shrink_pos = 0;
constinit Table* g_shrink_table = nullptr;
constinit bool g_shrink_walk_pending = false;
constinit int64_t g_shrink_walk_ns = 0;

// Gives back [lo, hi) if any page of it is resident; page aligned.
void drop_if_resident(uintptr_t lo, uintptr_t hi) {
  constexpr size_t kChunk = 2048;  // pages per mincore
  unsigned char vec[kChunk];
  for (uintptr_t a = lo; a < hi;) {
    size_t len = hi - a > kChunk * kPage ? kChunk * kPage : hi - a;
    if (raw_syscall(SYS_mincore, static_cast<long>(a), static_cast<long>(len), reinterpret_cast<long>(vec)) != 0)
      return;
    for (size_t i = 0; i < len / kPage; i++)
      if (vec[i] & 1) {
        raw_syscall(SYS_madvise, static_cast<long>(lo), static_cast<long>(hi - lo), MADV_DONTNEED);
        return;
      }
    a += len;
  }
}

// Compaction (core/compact.h). The walk collects the Gs it would compact
// (parked a whole period, on a slab, top of stack small enough) without
// claiming them; batch_flush sorts them by address and takes them run by
// run: neighbouring regions of one slab share one write-protection and one
// madvise (each a TLB shootdown), the dead stack between their ranges
// included. Each G of a run is claimed as for a plain shrink (kShrinkBusy,
// then still Waiting in the same park) with the run's id in
// G::shrink_batch; once the run is over sysmon publishes the id in
// g_batch_done and never touches those Gs again (their G struct may be among
// the pages given back): a resumer that finds kShrinkBusy waits for that
// instead of kShrinkDone. The list lives inside the walk's peek, so no
// listed G's memory is given back before the flush.
struct CompactItem {
  G* gp;
  int64_t park_time;
  Slab* slab;
  uintptr_t dead_lo;  // [dead_lo, lo) is dead: guard and stack below the saved stack pointer
  uintptr_t lo, hi;   // what must survive: up to the region's end
};
constexpr int kCandMax = 4096;
CompactItem* g_cands = nullptr;  // kCandMax items, mapped on first use (sysmon)
constinit int g_ncands = 0;
constinit uint64_t g_batch_id = 1;  // the next run's
constinit std::atomic<uint64_t> g_batch_done{0};
constinit uint32_t g_walk_candidates = 0;  // Gs parked a whole period, this walk and the last
constinit uint32_t g_last_candidates = 0;

// Claims gp for run id as shrink_one claims it; false if it was resumed
// or parked again since the walk saw it.
bool claim(const CompactItem& it, uint64_t id) {
  G* gp = it.gp;
  uint32_t none = kShrinkNone;
  if (!gp->shrink.compare_exchange_strong(none, kShrinkBusy, std::memory_order_seq_cst)) return false;
  if (gp->status.load(std::memory_order_seq_cst) != kGWaiting ||
      __atomic_load_n(&gp->park_time, __ATOMIC_RELAXED) != it.park_time) {
    gp->shrink.store(kShrinkNone, std::memory_order_seq_cst);
    return false;
  }
  gp->shrink_batch.store(id, std::memory_order_relaxed);
  return true;
}

void batch_flush() {
  if (g_ncands == 0) return;
  CompactItem* b = g_cands;
  int n = g_ncands;
  g_ncands = 0;
  // Shell sort by address: up to kCandMax items, often already in runs.
  for (int gap = n / 2; gap > 0; gap /= 2)
    for (int i = gap; i < n; i++)
      for (int j = i; j >= gap && b[j - gap].lo > b[j].lo; j -= gap) {
        CompactItem t = b[j];
        b[j] = b[j - gap];
        b[j - gap] = t;
      }
  CompactRange rs[kCompactMaxRun];
  for (int i = 0; i < n;) {
    Slab* s = b[i].slab;
    uint64_t id = g_batch_id++;
    int m = 0;
    uintptr_t run_lo = b[i].dead_lo, run_hi = 0;
    int j = i;
    for (; j < n && m < kCompactMaxRun; j++) {
      if (m > 0 && (b[j].slab != s || b[j].dead_lo != run_hi)) break;
      if (!claim(b[j], id)) {
        j++;
        break;  // its region is not dead: the run ends before it
      }
      rs[m++] = {b[j].lo, b[j].hi};
      run_hi = b[j].hi;
    }
    if (m > 0) {
      bool registered;
      {
        LockGuard lk(g_slab_lock);
        if (s->uffd_gen != g_uffd_gen && compact_register(s->base, s->nslots * s->region)) {
          g_uffd_any = true;  // first: a fork child must not see the slab registered and this false
          s->uffd_gen = g_uffd_gen;
        }
        registered = s->uffd_gen == g_uffd_gen;
      }
      if (registered) compact_run(rs, m, run_lo, run_hi);
    }
    g_batch_done.store(id, std::memory_order_release);
    i = j;
  }
}

// Whether this walk compacts: enough Gs parked long (config().compact_min),
// no tracer (a debugger stops the handler thread with the process), and
// the kernel's userfaultfd at hand.
bool compact_wanted() {
  uint32_t min = config().compact_min;
  if (min == 0 || poke_traced()) return false;
  if (g_walk_candidates + g_last_candidates + compact_count() < min) return false;
  return compact_ready();
}

// One G; true if it is parked and waits for a later look. Adds the time
// spent giving pages back to *drop_ns. After it has put gp in the
// compaction batch it does not touch gp again.
bool shrink_one(G* gp, int64_t* drop_ns) {
  if (gp->is_g0 || gp->is_main || gp->user_stack || !gp->map_base) return false;
  if (gp->status.load(std::memory_order_acquire) != kGWaiting) return false;
  if (gp->shrink.load(std::memory_order_relaxed) != kShrinkNone) return false;  // done for this park
  int64_t pt = __atomic_load_n(&gp->park_time, __ATOMIC_RELAXED);
  if (gp->shrink_seen != pt) {  // parked since the last look: look again next time
    gp->shrink_seen = pt;
    return true;
  }
  g_walk_candidates++;
  // Compacted (batch_flush): the top of its stack, TLS, TCB and G, with the
  // dead stack below dropped in the same run. Not with an alternate signal
  // stack inside its own stack (not dead, though below the stack pointer),
  // nor inside a handler the kernel ran (G::in_handler, below).
  uintptr_t base = reinterpret_cast<uintptr_t>(gp->map_base), end = base + gp->map_size;
  uintptr_t sp = gp->ctx.sp;
  if (gp->slab && gp->in_handler == 0 && !(gp->altstack_hi > base && gp->altstack_lo < end) &&
      sp > reinterpret_cast<uintptr_t>(gp->stack_lo) + kShrinkKeep && sp <= end &&
      (end - ((sp - kShrinkKeep) & ~uintptr_t{kPage - 1})) / kPage <= kCompactMaxPages && compact_wanted()) {
    if (!g_cands) {
      long r = raw_syscall6(SYS_mmap, 0, kCandMax * sizeof(CompactItem), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (!map_failed(r)) g_cands = reinterpret_cast<CompactItem*>(r);
    }
    if (g_cands) {
      g_cands[g_ncands++] = {gp, pt, static_cast<Slab*>(gp->slab), base, (sp - kShrinkKeep) & ~uintptr_t{kPage - 1},
                             end};
      if (g_ncands == kCandMax) {
        int64_t t0 = nanotime();
        batch_flush();
        *drop_ns += nanotime() - t0;
      }
      return false;
    }
  }
  uint32_t none = kShrinkNone;
  if (!gp->shrink.compare_exchange_strong(none, kShrinkBusy, std::memory_order_seq_cst)) return false;
  if (gp->status.load(std::memory_order_seq_cst) != kGWaiting ||
      __atomic_load_n(&gp->park_time, __ATOMIC_RELAXED) != pt) {
    gp->shrink.store(kShrinkNone, std::memory_order_seq_cst);
    return false;
  }
  if (gp->in_handler == 0) {
    uintptr_t lo = reinterpret_cast<uintptr_t>(gp->stack_lo);
    uintptr_t top = reinterpret_cast<uintptr_t>(gmem_stack_top(gp));
    if (sp > lo + kShrinkKeep && sp <= top) {
      uintptr_t hi = (sp - kShrinkKeep) & ~uintptr_t{kPage - 1};
      // An alternate signal stack the G enabled in its own stack, below
      // the saved stack pointer (a frame that set it returned): a handler
      // may be parked there.
      if (gp->altstack_hi > lo && gp->altstack_lo < hi) hi = gp->altstack_lo & ~uintptr_t{kPage - 1};
      lo = round_up(lo, kPage);
      if (hi > lo) {
        int64_t t0 = nanotime();
        drop_if_resident(lo, hi);
        *drop_ns += nanotime() - t0;
      }
    }
  }
  gp->shrink.store(kShrinkDone, std::memory_order_seq_cst);
  return false;
}
}  // namespace

void gmem_resume_slow(G* gp) {
  while (gp->shrink.load(std::memory_order_seq_cst) == kShrinkBusy &&
         !(gp->shrink_batch.load(std::memory_order_relaxed) &&
           g_batch_done.load(std::memory_order_acquire) >= gp->shrink_batch.load(std::memory_order_relaxed)))
    cpu_relax();
  gp->shrink_batch.store(0, std::memory_order_relaxed);
  gp->shrink.store(kShrinkNone, std::memory_order_relaxed);
}

bool gmem_shrink_parked(int64_t now, uint64_t parks) {
  if (g_shrink_pos == 0) {
    if (now < g_shrink_next) return g_shrink_pending || parks != g_shrink_parks;
    // Under a seccomp filter mincore may be trapped, and sysmon blocks
    // SIGSYS: the kernel would end the process (core/base.h). sysmon asks
    // before it calls this; no walks once a filter is seen.
    if (runtime_call_refused(kSeccompSeen)) return false;
    g_shrink_parks = parks;
    g_shrink_walk_pending = false;
    g_shrink_walk_ns = 0;
    g_last_candidates = g_walk_candidates;
    g_walk_candidates = 0;
    // A debugger reads memory while it holds every thread stopped, the
    // handler thread included: nothing stays compacted under one.
    if (poke_traced()) compact_restore_all();
  }
  int64_t drop_ns = 0;
  bool done = true;
  gmem_peek_begin();
  Table* t = g_table.load(std::memory_order_acquire);
  if (t != g_shrink_table) {  // resized since: start over
    g_shrink_table = t;
    g_shrink_pos = 0;
  }
  size_t cap = t ? t->cap : 0;
  for (size_t i = g_shrink_pos; i < cap; i++) {
    uintptr_t k = t->keys[i].load(std::memory_order_acquire);
    if (k == kEmpty || k == kTomb || (k & kNativeTag)) continue;
    if (compact_holds(k + tcbo::kSize)) continue;  // touching it would bring it back
    g_shrink_walk_pending |= shrink_one(reinterpret_cast<G*>(k + tcbo::kSize), &drop_ns);
    // Giving pages back costs a TLB shootdown each (up to 1 ms here):
    // sysmon's other work must not wait for thousands; go on next round.
    if (drop_ns > kShrinkBudgetNs && i + 1 < cap) {
      g_shrink_pos = i + 1;
      done = false;
      break;
    }
  }
  {
    int64_t t0 = nanotime();
    batch_flush();
    drop_ns += nanotime() - t0;
  }
  gmem_peek_end();
  // The walk's own cost sets the period (a million Gs: a walk every few
  // seconds); the pages given back are work done once per park.
  g_shrink_walk_ns += nanotime() - now - drop_ns;
  if (!done) return true;
  g_shrink_pos = 0;
  g_shrink_next = now + (g_shrink_walk_ns * 20 > kShrinkScanNs ? g_shrink_walk_ns * 20 : kShrinkScanNs);
  g_shrink_pending = g_shrink_walk_pending;
  return g_shrink_pending;
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
