// interpose/dl.cpp — dlopen of a library with initial-exec TLS
// (docs/ARCHITECTURE.md, "TLS and glibc internals").
//
// A library that uses the initial-exec TLS model and is loaded after start-up
// gets a block in the static TLS area of every thread. glibc copies its
// initial image into the threads on its own lists; Gs are on none, so their
// copy would read as zero (`__thread int x = 42` seen as 0). After each
// dlopen and dlmopen we look for modules whose static TLS block no G has yet
// and copy their image into every G's TCB. Gs created later get it from
// glibc (_dl_allocate_tls_init covers every module with static TLS).
//
// The start-up modules' blocks lie below a mark taken at start-up (glibc
// lays them out first and never unloads them). Any other block is named by
// its link map, module id and offset together, in an unbounded list of the
// blocks every G has, made on the first dlopen that adds one. dlclose takes
// the blocks of unloaded modules off the list: glibc reuses a closed
// module's link map memory, module id and (when it was the last) static TLS
// offset, so a library closed and opened again would otherwise look
// handled.
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#include "core/futex.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

MNP_START_DATA constinit size_t g_off_tls_offset = 0;  // offsetof(struct link_map, l_tls_offset)
MNP_START_DATA constinit size_t g_off_tls_modid = 0;
constinit Lock g_dl_lock;

struct Block {
  const void* map;
  ptrdiff_t offset;
  size_t modid;
  bool operator==(const Block&) const = default;
};

// Offsets up to this one are the start-up modules' blocks.
MNP_START_DATA constinit ptrdiff_t g_startup_end = 0;
// The other blocks every G has (g_dl_lock). Runtime memory, not malloc: a
// program's allocator may itself dlopen.
constinit Block* g_known = nullptr;
constinit size_t g_nknown = 0, g_cap = 0;

bool known(const Block& b) {
  if (b.offset <= g_startup_end) return true;
  for (size_t i = 0; i < g_nknown; i++)
    if (g_known[i] == b) return true;
  return false;
}

bool remember(const Block& b) {
  if (g_nknown == g_cap) {
    size_t cap = g_cap ? g_cap * 2 : 4096 / sizeof(Block);
    void* p = mmap(nullptr, cap * sizeof(Block), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    if (g_known) {
      memcpy(p, g_known, g_nknown * sizeof(Block));
      munmap(g_known, g_cap * sizeof(Block));
    }
    g_known = static_cast<Block*>(p);
    g_cap = cap;
  }
  g_known[g_nknown++] = b;
  return true;
}

// Calls f(block) for every loaded module with a static TLS block, in every
// link-map namespace (glibc >= 2.35 chains them from _r_debug when dlmopen
// has made more than the base one).
template <typename F>
void for_each_static_block(F f) {
  const r_debug_extended* ns = reinterpret_cast<const r_debug_extended*>(&_r_debug);
  for (; ns; ns = ns->base.r_version >= 2 ? ns->r_next : nullptr)
    for (const link_map* l = ns->base.r_map; l; l = l->l_next) {
      auto* base = reinterpret_cast<const char*>(l);
      Block b{l, *reinterpret_cast<const ptrdiff_t*>(base + g_off_tls_offset),
              *reinterpret_cast<const size_t*>(base + g_off_tls_modid)};
      // 0: no TLS, or none in the static area yet; -1: forced dynamic
      // (reached through __tls_get_addr, lazily).
      if (b.modid != 0 && b.offset != 0 && b.offset != -1) f(b);
    }
}

struct Image {
  const void* data = nullptr;
  size_t filesz = 0, memsz = 0;
};

// A module's TLS initialisation image, from the program headers at the start
// of its first mapping (dl_iterate_phdr would do, but it lists only the
// caller's namespace). False when the headers are not where a loaded shared
// object has them.
bool image_of(const link_map* l, Image* img) {
  dl_find_object fo;
  if (_dl_find_object(const_cast<ElfW(Dyn)*>(l->l_ld), &fo) != 0 || fo.dlfo_link_map != l) return false;
  auto* eh = static_cast<const ElfW(Ehdr)*>(fo.dlfo_map_start);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(ElfW(Phdr)) ||
      eh->e_phoff + size_t{eh->e_phnum} * sizeof(ElfW(Phdr)) > 4096)  // the first page is readable
    return false;
  auto* ph = reinterpret_cast<const ElfW(Phdr)*>(reinterpret_cast<const char*>(eh) + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_TLS) {
      *img = {reinterpret_cast<const void*>(l->l_addr + ph[i].p_vaddr), ph[i].p_filesz, ph[i].p_memsz};
      return true;
    }
  return false;
}

// copy: false before the runtime is up (a constructor's dlopen): the only
// threads are glibc's, which glibc initialised; the blocks are remembered.
void sync_static_tls(bool copy) {
  if (!g_off_tls_offset) return;
  LockGuard lk(g_dl_lock);
  for_each_static_block([copy](const Block& b) {
    if (known(b)) return;
    Image img;
    if (copy && !image_of(static_cast<const link_map*>(b.map), &img)) {
      raw_print("warning: a dlopen'ed library's initial-exec TLS image was not found; threads read zeros there");
      remember(b);
      return;
    }
    // Not remembered (no memory): copied again after the next dlopen, as
    // the only way not to leave Gs without the image.
    remember(b);
    if (!copy) return;
    gmem_for_each_tcb([&](void* tcb) {
      char* dest = static_cast<char*>(tcb) - b.offset;
      memcpy(dest, img.data, img.filesz);
      memset(dest + img.filesz, 0, img.memsz - img.filesz);
    });
  });
}

// After a dlclose: forget the blocks of modules no longer loaded.
void forget_unloaded() {
  if (!g_off_tls_offset) return;
  LockGuard lk(g_dl_lock);
  size_t kept = 0;
  for (size_t i = 0; i < g_nknown; i++) {
    bool live = false;
    for_each_static_block([&](const Block& b) { live |= b == g_known[i]; });
    if (live) g_known[kept++] = g_known[i];
  }
  g_nknown = kept;
}

}  // namespace

namespace mnp {
MNP_STARTUP void interpose_dl_init() {
  auto* d = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, "_thread_db_link_map_l_tls_offset", "GLIBC_PRIVATE"));
  auto* m = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, "_thread_db_link_map_l_tls_modid", "GLIBC_PRIVATE"));
  if (!d || !m || d[0] != 64 || m[0] != 64) {
    raw_print("warning: link_map layout unknown; dlopen'ed initial-exec TLS is not initialised in threads");
    return;
  }
  g_off_tls_offset = d[2];
  g_off_tls_modid = m[2];
  // The start-up modules' images are in every G's TLS already.
  for_each_static_block([](const Block& b) { g_startup_end = b.offset > g_startup_end ? b.offset : g_startup_end; });
}
}  // namespace mnp

extern "C" MNP_EXPORT void* dlopen(const char* file, int mode) noexcept {
  void* h = real_dlopen(file, mode);
  if (h) sync_static_tls(runtime_up);
  return h;
}

extern "C" MNP_EXPORT void* dlmopen(Lmid_t lmid, const char* file, int mode) noexcept {
  void* h = real_dlmopen(lmid, file, mode);
  if (h) sync_static_tls(runtime_up);
  return h;
}

extern "C" MNP_EXPORT int dlclose(void* handle) noexcept {
  int r = real_dlclose(handle);
  if (r == 0) forget_unloaded();
  return r;
}
