// core/compact.cpp — see compact.h; docs/ARCHITECTURE.md, "Compacting
// parked Gs", is the overview.
//
// A compacted range is a record: its address, its page count and a blob
// holding a bitmap of its non-zero 8-byte words followed by those words.
// The table maps every page of every compacted range to its record. The
// pages themselves are gone (MADV_DONTNEED), and the slab they belong to is
// registered with the userfaultfd, so the first touch of any of them, by
// any thread, from user or kernel mode (a read(2) into a buffer on a parked
// G's stack), stops that thread until the handler thread has put the whole
// range back (UFFDIO_COPY) and dropped the record.
//
// Compaction of a run, by sysmon (compact_run):
//   1. records made and their pages entered in the table (encoding);
//   2. the run write-protected (UFFDIO_WRITEPROTECT): a write from now on
//      waits for the handler;
//   3. each range's missing pages filled by sysmon itself (zeros,
//      write-protected), then each range read and encoded (a swapped-out
//      page is read back by the kernel);
//   4. the records marked dropping, the run given back (MADV_DONTNEED);
//   5. the records marked done.
// The handler, for a fault on a page of a record not done, waits for step 5:
// sysmon never waits for the handler (it takes no lock a faulting thread
// may hold, fills the missing pages it reads itself, and touches no page of
// the run outside step 3) — except for a read of a missing page during
// step 3, which can only be a reader that wants zeros anyway (the page was
// never there): that page gets zeros, write-protected, at once. From step 4
// on a missing page may be one this run dropped, whose bytes only the
// record has. While it waits, every other fault of the process waits too
// (one handler): a run takes milliseconds. A fault on a
// page of a done record restores the record. A fault on a page of no
// record is a fresh page of a registered slab (zeros) or a stale
// write-protection (cleared).
//
// Records and blobs come from an arena of 1 MiB chunks with free lists per
// 64-byte size class; the chunks go back when no record is left.
#include "core/compact.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/base.h"
#include "core/futex.h"
#include "core/rtfd.h"
#include "core/sched.h"
#include "core/sched_internal.h"

namespace mnp {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kGrain = 8;
constexpr size_t kMapBytesPerPage = kPage / kGrain / 8;  // bitmap bytes per page
constexpr size_t kMaxBlob = kCompactMaxPages * (kPage + kMapBytesPerPage);
constexpr size_t kClass = 64;
constexpr size_t kNumClasses = kMaxBlob / kClass + 1;
constexpr size_t kChunkBytes = size_t{1} << 20;

enum : uint8_t { kDone, kEncoding, kDropping, kRestoring };

struct Rec {
  uintptr_t lo;
  uint32_t npages;
  uint8_t phase;
  unsigned char* blob;  // null until encoded
  size_t blob_bytes;
};

struct Slot {
  uintptr_t page;  // 0: empty
  Rec* rec;
};

// All under g_lock, held only briefly and never while touching a page
// that may be compacted or missing: only by sysmon and the handler thread
// (whose stacks are no slab's), and by a G only after stack_probe. Any
// thread may ask compact_holds, without the lock: g_seq is odd while the
// table changes (a seqlock), and a table replaced by a bigger one stays
// mapped (its pages given back read as empty), so a reader that raced
// with a change sees g_seq moved and looks again.
constinit Lock g_lock;
constinit std::atomic<uint64_t> g_seq{0};
constinit std::atomic<Slot*> g_slots_pub{nullptr};
constinit std::atomic<size_t> g_cap_pub{0};
constinit Slot* g_slots = nullptr;
constinit size_t g_cap = 0, g_used = 0;

struct SeqWrite {
  SeqWrite() { g_seq.fetch_add(1, std::memory_order_acq_rel); }
  ~SeqWrite() { g_seq.fetch_add(1, std::memory_order_release); }
};

// Before a G takes g_lock: up to 64 KiB of its stack below the caller made
// resident (read: a missing page gets the zero page, and a later write to
// it is an ordinary copy-on-write fault), so that nothing it calls (nor a
// signal frame the kernel writes there) meets a missing page of a
// registered slab, which only the handler thread can fill, and it needs
// g_lock. Bounded by the G's stack: a 16 KiB stack has less.
[[gnu::noinline]] void stack_probe() {
  constexpr uintptr_t kProbe = 64 * 1024;
  G* gp = tls_g;
  if (!gp || !gp->stack_lo) return;  // not a G: its stack is no slab's
  auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  auto lo = reinterpret_cast<uintptr_t>(gp->stack_lo);
  if (sp <= lo || sp - lo > gp->stack_size) return;  // not on that stack (a handler's)
  uintptr_t end = sp - lo > kProbe ? sp - kProbe : lo;
  for (uintptr_t a = sp & ~(kPage - 1); a >= end; a -= kPage) (void)*reinterpret_cast<const volatile char*>(a);
}

constinit std::atomic<uint64_t> g_nrecs{0};
constinit bool g_frozen = false;  // fork in progress, tracer, or no fd: no new compaction

struct Chunk {
  Chunk* next;
};
constinit Chunk* g_chunks = nullptr;
constinit char* g_bump = nullptr;
constinit char* g_bump_end = nullptr;
constinit void* g_free[kNumClasses] = {};

// The userfaultfd and its handler thread.
enum : uint32_t { kUnknown, kReady, kUnavailable };
constinit std::atomic<uint32_t> g_state{kUnknown};
constinit std::atomic<int> g_fd{-1};

// Private anonymous read-write memory of the runtime's own; null if the
// kernel refuses. MAP_NORESERVE: pages are used only as they are touched.
void* map_rw(size_t bytes) {
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return r < 0 && r > -4096 ? nullptr : reinterpret_cast<void*>(r);
}

// ---- arena ---------------------------------------------------------------------
size_t class_of(size_t bytes) { return (bytes + kClass - 1) / kClass; }

void* arena_alloc_locked(size_t bytes) {
  size_t c = class_of(bytes);
  if (void* p = g_free[c]) {
    g_free[c] = *static_cast<void**>(p);
    return p;
  }
  size_t sz = c * kClass;
  if (g_bump_end - g_bump < static_cast<ptrdiff_t>(sz)) {
    auto* ch = static_cast<Chunk*>(map_rw(kChunkBytes));
    if (!ch) return nullptr;
    ch->next = g_chunks;
    g_chunks = ch;
    g_bump = reinterpret_cast<char*>(ch) + kClass;
    g_bump_end = reinterpret_cast<char*>(ch) + kChunkBytes;
  }
  void* p = g_bump;
  g_bump += sz;
  return p;
}

void arena_free_locked(void* p, size_t bytes) {
  size_t c = class_of(bytes);
  *static_cast<void**>(p) = g_free[c];
  g_free[c] = p;
}

// No record left: every chunk goes back (a burst of sleepers is over).
void arena_release_if_empty_locked() {
  if (g_nrecs.load(std::memory_order_relaxed) != 0 || !g_chunks) return;
  while (Chunk* ch = g_chunks) {
    g_chunks = ch->next;
    raw_syscall(SYS_munmap, reinterpret_cast<long>(ch), kChunkBytes);
  }
  g_bump = g_bump_end = nullptr;
  for (auto& f : g_free) f = nullptr;
  // The table is empty: its pages go back, the mapping stays (readers).
  if (g_slots)
    raw_syscall(SYS_madvise, reinterpret_cast<long>(g_slots), static_cast<long>(g_cap * sizeof(Slot)), MADV_DONTNEED);
}

// ---- page table (open addressing, linear probing, deletion by shifting back)
size_t slot_of(uintptr_t page) { return static_cast<size_t>((page >> 12) * 0x9E3779B97F4A7C15ULL >> 20) & (g_cap - 1); }

Rec* find_locked(uintptr_t page) {
  if (!g_slots) return nullptr;
  for (size_t i = slot_of(page);; i = (i + 1) & (g_cap - 1)) {
    if (g_slots[i].page == page) return g_slots[i].rec;
    if (g_slots[i].page == 0) return nullptr;
  }
}

void put_locked(uintptr_t page, Rec* r) {
  SeqWrite w;
  size_t i = slot_of(page);
  while (g_slots[i].page != 0) i = (i + 1) & (g_cap - 1);
  g_slots[i] = {page, r};
  g_used++;
}

bool grow_locked(size_t want) {
  if (g_slots && (g_used + want) * 2 <= g_cap) return true;
  size_t cap = g_cap ? g_cap : 4096;
  while ((g_used + want) * 2 > cap) cap *= 2;
  auto* nt = static_cast<Slot*>(map_rw(cap * sizeof(Slot)));
  if (!nt) return false;
  SeqWrite w;
  Slot* old = g_slots;
  size_t old_cap = g_cap;
  g_slots = nt;
  g_cap = cap;
  g_used = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].page) put_locked(old[i].page, old[i].rec);
  // The pointer before the capacity, and readers load the capacity first:
  // a reader that sees the new capacity sees the new table (never an old
  // table probed with a bigger mask).
  g_slots_pub.store(g_slots, std::memory_order_release);
  g_cap_pub.store(g_cap, std::memory_order_release);
  // Retired, not unmapped: a reader may still be probing it.
  if (old)
    raw_syscall(SYS_madvise, reinterpret_cast<long>(old), static_cast<long>(old_cap * sizeof(Slot)), MADV_DONTNEED);
  return true;
}

void erase_locked(uintptr_t page) {
  SeqWrite w;
  size_t i = slot_of(page);
  while (g_slots[i].page != page) {
    if (g_slots[i].page == 0) return;
    i = (i + 1) & (g_cap - 1);
  }
  // Shift back the entries after i that probed past it.
  for (size_t j = (i + 1) & (g_cap - 1);; j = (j + 1) & (g_cap - 1)) {
    if (g_slots[j].page == 0) break;
    size_t home = slot_of(g_slots[j].page);
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      g_slots[i] = g_slots[j];
      i = j;
    }
  }
  g_slots[i] = {0, nullptr};
  g_used--;
}

void unlink_rec_locked(Rec* r) {
  for (uint32_t p = 0; p < r->npages; p++) erase_locked(r->lo + p * kPage);
}

void free_rec_locked(Rec* r) {
  if (r->blob) arena_free_locked(r->blob, r->blob_bytes);
  arena_free_locked(r, sizeof(Rec));
}

// ---- encoding -----------------------------------------------------------------
size_t encode(const unsigned char* src, uint32_t npages, unsigned char* out) {
  size_t map = npages * kMapBytesPerPage;
  memset(out, 0, map);
  unsigned char* d = out + map;
  size_t grains = npages * kPage / kGrain;
  for (size_t g = 0; g < grains; g++) {
    uint64_t a;
    memcpy(&a, src + g * kGrain, kGrain);
    if (a == 0) continue;
    out[g / 8] = static_cast<unsigned char>(out[g / 8] | (1u << (g % 8)));
    memcpy(d, &a, kGrain);
    d += kGrain;
  }
  return static_cast<size_t>(d - out);
}

void decode(const unsigned char* blob, uint32_t npages, unsigned char* dst) {
  memset(dst, 0, npages * kPage);
  const unsigned char* s = blob + npages * kMapBytesPerPage;
  size_t grains = npages * kPage / kGrain;
  for (size_t g = 0; g < grains; g++)
    if (blob[g / 8] & (1u << (g % 8))) {
      memcpy(dst + g * kGrain, s, kGrain);
      s += kGrain;
    }
}

// ---- userfaultfd ioctls ----------------------------------------------------------
long uffd_ioctl(unsigned long req, void* arg) {
  return raw_syscall(SYS_ioctl, g_fd.load(std::memory_order_acquire), static_cast<long>(req),
                     reinterpret_cast<long>(arg));
}

bool write_protect(uintptr_t lo, uintptr_t hi, bool on) {
  uffdio_writeprotect w{};
  w.range.start = lo;
  w.range.len = hi - lo;
  w.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;  // clearing also wakes the range's waiters
  return uffd_ioctl(UFFDIO_WRITEPROTECT, &w) == 0;
}

void wake(uintptr_t lo, size_t len) {
  uffdio_range r{lo, len};
  uffd_ioctl(UFFDIO_WAKE, &r);
}

// Copies len bytes of src to the missing pages at dst; pages already there
// are left alone. Wakes the range's waiters. `must`: the bytes are a
// compacted G's and exist nowhere else, so a page that cannot be put back
// (no memory for a while) ends the process rather than read as zeros.
void fill(uintptr_t dst, const unsigned char* src, size_t len, bool wp, bool must = true) {
  size_t off = 0;
  int nomem = 0;
  while (off < len) {
    uffdio_copy c{};
    c.dst = dst + off;
    c.src = reinterpret_cast<uintptr_t>(src + off);
    c.len = len - off;
    c.mode = wp ? UFFDIO_COPY_MODE_WP : 0;
    long r = uffd_ioctl(UFFDIO_COPY, &c);
    if (r == 0) break;
    if (c.copy > 0) off += static_cast<size_t>(c.copy);
    else if (r == -EEXIST) off += kPage;  // that page is there already
    else if (r == -EAGAIN) continue;      // the address space changed meanwhile
    else if (r == -ENOMEM && must && ++nomem < 10000) raw_sleep_ns(1000 * 1000);
    else if (r == -ESRCH || r == -ENOENT || !must) break;  // the process exits, or a prefill
    else fatal("compaction: a parked thread's pages cannot be put back (UFFDIO_COPY failed)");
  }
  wake(dst, len);
}

// Puts a done record's pages back; r is the caller's (unlinked).
void restore(Rec* r, unsigned char* scratch) {
  decode(r->blob, r->npages, scratch);
  fill(r->lo, scratch, r->npages * kPage, false);
}

// Never written: its pages are the kernel's zero page, however many.
alignas(kPage) MNP_COLD_BSS constinit unsigned char g_zero[kCompactMaxPages * kPage] = {};

void resolve(const uffd_msg& m, unsigned char* scratch) {
  uintptr_t page = m.arg.pagefault.address & ~(kPage - 1);
  bool wp = m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP;
  bool write = m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE;
  for (;;) {
    g_lock.lock();
    Rec* r = find_locked(page);
    if (r && r->phase != kDone) {
      uint8_t phase = r->phase;
      g_lock.unlock();
      if (phase == kEncoding && !wp && !write) {  // see the file's comment: zeros, protected until the run is done
        fill(page, g_zero, kPage, true);
        return;
      }
      raw_syscall(SYS_sched_yield);
      continue;
    }
    if (r) {
      // Out of the table, still counted (g_nrecs) until freed: the arena
      // stays, and compact_restore_all waits for it.
      unlink_rec_locked(r);
      g_lock.unlock();
      restore(r, scratch);
      g_lock.lock();
      free_rec_locked(r);
      g_nrecs.fetch_sub(1, std::memory_order_relaxed);
      arena_release_if_empty_locked();
      g_lock.unlock();
      return;
    }
    g_lock.unlock();
    break;
  }
  if (wp) {
    write_protect(page, page + kPage, false);
    return;
  }
  if (write) {
    fill(page, g_zero, kPage, false);
    return;
  }
  uffdio_zeropage z{};
  z.range.start = page;
  z.range.len = kPage;
  if (uffd_ioctl(UFFDIO_ZEROPAGE, &z) != 0) wake(page, kPage);
}

void* handler_main(void*) {
  // No handler of the program's may run here (it could touch a compacted
  // page, which only this thread can bring back).
  uint64_t all = ~uint64_t{0};
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8);
  auto* scratch = static_cast<unsigned char*>(map_rw(kCompactMaxPages * kPage));
  if (!scratch) fatal("compaction: cannot map the handler's buffer");
  uffd_msg msgs[32];
  for (;;) {
    int fd = g_fd.load(std::memory_order_acquire);
    if (fd < 0) return nullptr;
    // A bounded wait: if the program takes the fd's number (compact_relocate_fd)
    // between this load and the poll, the next round uses the new one.
    pollfd pf{fd, POLLIN, 0};
    struct timespec ts {
      0, 50 * 1000 * 1000
    };
    raw_syscall6(SYS_ppoll, reinterpret_cast<long>(&pf), 1, reinterpret_cast<long>(&ts), 0, 8, 0);
    long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(msgs), sizeof msgs);
    if (n <= 0) continue;
    for (long i = 0; i < n / static_cast<long>(sizeof(uffd_msg)); i++)
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) resolve(msgs[i], scratch);
  }
}

int open_uffd() {
  long fd = raw_syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd == -EPERM) {
    // vm.unprivileged_userfaultfd=0 and no CAP_SYS_PTRACE: the device
    // gives the same descriptor to whoever may open it. (UFFD_USER_MODE_ONLY
    // would not do: a system call writing into a compacted page would fail
    // with EFAULT.)
    long dev = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/dev/userfaultfd"), O_RDWR | O_CLOEXEC);
    if (dev < 0) return -1;
    fd = raw_syscall(SYS_ioctl, dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    raw_syscall(SYS_close, dev);
  }
  if (fd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  if (raw_syscall(SYS_ioctl, fd, UFFDIO_API, reinterpret_cast<long>(&api)) != 0 ||
      !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
    raw_syscall(SYS_close, fd);
    return -1;
  }
  return static_cast<int>(fd);
}

}  // namespace

bool compact_ready() {
  uint32_t s = g_state.load(std::memory_order_acquire);
  if (s != kUnknown) return s == kReady;
  int fd = open_uffd();
  if (fd >= 0) {
    fd = rtfd_move_high(fd);
    rtfd_add(fd, RtfdKind::kOwned);
    g_fd.store(fd, std::memory_order_release);
    if (os_thread_start(handler_main, nullptr) != 0) {
      rtfd_remove(fd);
      raw_syscall(SYS_close, fd);
      g_fd.store(-1, std::memory_order_release);
      fd = -1;
    }
  }
  g_state.store(fd >= 0 ? kReady : kUnavailable, std::memory_order_release);
  return fd >= 0;
}

bool compact_register(uintptr_t base, size_t len) {
  uffdio_register r{};
  r.range.start = base;
  r.range.len = len;
  r.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
  return uffd_ioctl(UFFDIO_REGISTER, &r) == 0;
}

void compact_prefill(uintptr_t lo, uintptr_t hi) {
  if (hi - lo > sizeof g_zero) lo = hi - sizeof g_zero;
  fill(lo, g_zero, hi - lo, false, false);
}

bool compact_run(const CompactRange* rs, int n, uintptr_t run_lo, uintptr_t run_hi) {
  static constinit unsigned char* scratch = nullptr;  // sysmon's
  if (!scratch && !(scratch = static_cast<unsigned char*>(map_rw(kMaxBlob)))) return false;
  Rec* recs[kCompactMaxRun];
  size_t pages = 0;
  for (int i = 0; i < n; i++) pages += (rs[i].hi - rs[i].lo) / kPage;
  // 1. Records, encoding.
  {
    LockGuard lk(g_lock);
    if (g_frozen || !grow_locked(pages)) return false;
    for (int i = 0; i < n; i++) {
      auto* r = static_cast<Rec*>(arena_alloc_locked(sizeof(Rec)));
      if (!r) {
        for (int j = 0; j < i; j++) {
          unlink_rec_locked(recs[j]);
          free_rec_locked(recs[j]);
        }
        return false;
      }
      *r = Rec{rs[i].lo, static_cast<uint32_t>((rs[i].hi - rs[i].lo) / kPage), kEncoding, nullptr, 0};
      recs[i] = r;
      for (uint32_t p = 0; p < r->npages; p++) put_locked(r->lo + p * kPage, r);
    }
    g_nrecs.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  auto drop_records = [&] {
    LockGuard lk(g_lock);
    for (int i = 0; i < n; i++) {
      unlink_rec_locked(recs[i]);
      free_rec_locked(recs[i]);
    }
    g_nrecs.fetch_sub(static_cast<uint64_t>(n), std::memory_order_relaxed);
    arena_release_if_empty_locked();
  };
  // 2. Writes wait from now on.
  if (!write_protect(run_lo, run_hi, true)) {
    drop_records();
    write_protect(run_lo, run_hi, false);  // a part may have been protected
    return false;
  }
  // 3. The blobs. Missing pages of the ranges are filled first (zeros,
  // protected; pages there are left alone): sysmon's reads must never wait
  // for the handler, which may itself be waiting for this run to end (a
  // write into it came first).
  for (int i = 0; i < n; i++) fill(rs[i].lo, g_zero, rs[i].hi - rs[i].lo, true, false);
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    size_t bytes = encode(reinterpret_cast<const unsigned char*>(rs[i].lo), recs[i]->npages, scratch);
    LockGuard lk(g_lock);
    auto* blob = static_cast<unsigned char*>(arena_alloc_locked(bytes));
    if (!blob) {
      ok = false;
      break;
    }
    memcpy(blob, scratch, bytes);
    recs[i]->blob = blob;
    recs[i]->blob_bytes = bytes;
  }
  if (!ok) {
    drop_records();
    write_protect(run_lo, run_hi, false);
    return false;
  }
  // 4. The pages go. From now on a page may be missing because of this
  // call: a fault waits for the end (no zeros for a read any more). A
  // failure (locked memory: EINVAL) may come after some were dropped: every
  // range is put back, which fills exactly those.
  {
    LockGuard lk(g_lock);
    for (int i = 0; i < n; i++) recs[i]->phase = kDropping;
  }
  bool dropped =
      raw_syscall(SYS_madvise, static_cast<long>(run_lo), static_cast<long>(run_hi - run_lo), MADV_DONTNEED) == 0;
  // 5. Done.
  {
    LockGuard lk(g_lock);
    for (int i = 0; i < n; i++) recs[i]->phase = kDone;
  }
  if (dropped) return true;
  compact_restore_all();
  write_protect(run_lo, run_hi, false);
  return false;
}

bool compact_holds(uintptr_t addr) {
  if (g_nrecs.load(std::memory_order_relaxed) == 0) return false;
  uintptr_t page = addr & ~(kPage - 1);
  for (;;) {
    uint64_t s = g_seq.load(std::memory_order_acquire);
    if (s & 1) {
      cpu_relax();
      continue;
    }
    size_t cap = g_cap_pub.load(std::memory_order_acquire);
    Slot* t = g_slots_pub.load(std::memory_order_acquire);
    bool found = false;
    if (t)
      for (size_t i = static_cast<size_t>((page >> 12) * 0x9E3779B97F4A7C15ULL >> 20) & (cap - 1), n = 0; n < cap;
           i = (i + 1) & (cap - 1), n++) {
        uintptr_t p = __atomic_load_n(&t[i].page, __ATOMIC_RELAXED);
        if (p == page) {
          found = true;
          break;
        }
        if (p == 0) break;
      }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (g_seq.load(std::memory_order_relaxed) == s) return found;
  }
}

uint64_t compact_count() { return g_nrecs.load(std::memory_order_relaxed); }

void compact_restore_all() {
  if (g_nrecs.load(std::memory_order_acquire) == 0) return;
  stack_probe();
  static constinit Lock restore_lock;  // one scratch buffer
  static constinit unsigned char* scratch = nullptr;
  LockGuard rl(restore_lock);
  if (!scratch && !(scratch = static_cast<unsigned char*>(map_rw(kCompactMaxPages * kPage))))
    fatal("compaction: cannot map a buffer to restore pages");
  // A record stays in the table, marked restoring, until its pages are
  // back: a fault on one of them meanwhile must wait (the handler would
  // otherwise take the page for a fresh one and give it zeros, which the
  // copy below would then leave alone).
  size_t pos = 0;  // where the scan goes on (entries may shift back: a full pass finds them)
  for (;;) {
    Rec* r = nullptr;
    {
      LockGuard lk(g_lock);
      if (g_nrecs.load(std::memory_order_relaxed) == 0) return;  // none in the table, none being put back
      for (size_t n = 0; n < g_cap && !r; n++, pos = (pos + 1) & (g_cap - 1))
        if (g_slots[pos].page && g_slots[pos].rec->phase == kDone) r = g_slots[pos].rec;
      if (r) r->phase = kRestoring;
    }
    if (!r) {
      // A run sysmon is compacting (the fork prepare handler, with
      // g_frozen set, waits for it to end), or a record the handler or
      // another restorer is putting back.
      raw_syscall(SYS_sched_yield);
      continue;
    }
    restore(r, scratch);
    LockGuard lk(g_lock);
    unlink_rec_locked(r);
    free_rec_locked(r);
    g_nrecs.fetch_sub(1, std::memory_order_relaxed);
    arena_release_if_empty_locked();
  }
}

namespace {
// No new run starts while frozen (a run under way ends first).
void set_frozen(bool on) {
  stack_probe();
  LockGuard lk(g_lock);
  g_frozen = on;
}
}  // namespace

MNP_STARTUP void compact_before_fork() {
  if (g_state.load(std::memory_order_acquire) != kReady) return;
  set_frozen(true);
  compact_restore_all();
}

MNP_STARTUP void compact_after_fork_parent() {
  if (g_state.load(std::memory_order_acquire) != kReady) return;
  set_frozen(false);
}

MNP_STARTUP void compact_after_fork_child() {
  // Nothing to undo in a process that never compacted (its lock was never
  // taken): most fork children exec next, and each write here would be a
  // copy-on-write fault of a page of the parent's.
  if (g_state.load(std::memory_order_relaxed) != kReady && g_fd.load(std::memory_order_relaxed) < 0) return;
  // The child's memory is plain (a userfaultfd does not follow a fork
  // without UFFD_FEATURE_EVENT_FORK) and every range was restored before
  // it; no handler thread exists here. Compaction starts afresh if needed.
  g_lock.reset_in_child();
  g_frozen = false;
  int fd = g_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    rtfd_remove(fd);
    raw_syscall(SYS_close, fd);
  }
  g_fd.store(-1, std::memory_order_relaxed);
  g_state.store(kUnknown, std::memory_order_relaxed);
}

bool compact_owns_fd(int fd) { return fd >= 0 && fd == g_fd.load(std::memory_order_acquire); }

void compact_relocate_fd(int fd) {
  stack_probe();
  long nfd = rtfd_dup_high(fd);
  if (nfd < 0) {
    // No number left: without the descriptor every compacted page would
    // read as zeros. Put them all back and compact no more.
    raw_print("the program takes every fd number: parked threads are no longer compacted");
    set_frozen(true);
    compact_restore_all();
    rtfd_remove(fd);
    g_fd.store(-1, std::memory_order_release);  // the handler thread ends
    g_state.store(kUnavailable, std::memory_order_release);
    return;
  }
  rtfd_add(static_cast<int>(nfd), RtfdKind::kOwned);
  g_fd.store(static_cast<int>(nfd), std::memory_order_release);
  rtfd_remove(fd);
}

}  // namespace mnp
