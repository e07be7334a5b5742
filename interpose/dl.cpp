// interpose/dl.cpp — dlopen of a library with initial-exec TLS
// (docs/ARCHITECTURE.md, "TLS and glibc internals").
//
// A library that uses the initial-exec TLS model and is loaded after start-up
// gets a block in the static TLS area of every thread. glibc copies its
// initial image into the threads on its own lists; Gs are on none, so their
// copy would read as zero (`__thread int x = 42` seen as 0). After each
// dlopen we find modules with static TLS that we have not handled yet and
// copy their image into every G's TCB. Gs created later get it from glibc
// (_dl_allocate_tls_init covers every module with static TLS).
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include "core/futex.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "interpose/real.h"

using namespace mnp;

namespace {

constinit size_t g_off_tls_offset = 0;  // offsetof(struct link_map, l_tls_offset)
constinit size_t g_off_tls_modid = 0;
constinit Lock g_dl_lock;
constexpr int kMaxKnown = 256;
constinit const void* g_known[kMaxKnown] = {};  // link maps already handled (lock)
constinit int g_nknown = 0;

struct Image {
  size_t modid;
  const void* data;
  size_t filesz, memsz;
};

int find_image(struct dl_phdr_info* info, size_t, void* arg) {
  auto* img = static_cast<Image*>(arg);
  if (info->dlpi_tls_modid != img->modid) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      img->data = reinterpret_cast<const void*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
      img->filesz = info->dlpi_phdr[i].p_filesz;
      img->memsz = info->dlpi_phdr[i].p_memsz;
      return 1;
    }
  return 0;
}

bool known(const void* lm) {
  for (int i = 0; i < g_nknown; i++)
    if (g_known[i] == lm) return true;
  return false;
}

// Marks every module with TLS as handled (at start-up: their images are in
// every G's TLS already).
void mark_all_locked() {
  for (struct link_map* l = _r_debug.r_map; l && g_nknown < kMaxKnown; l = l->l_next)
    if (!known(l)) g_known[g_nknown++] = l;
}

void sync_static_tls() {
  if (!g_off_tls_offset) return;
  LockGuard lk(g_dl_lock);
  for (struct link_map* l = _r_debug.r_map; l; l = l->l_next) {
    if (known(l)) continue;
    if (g_nknown < kMaxKnown) g_known[g_nknown++] = l;
    auto off = *reinterpret_cast<const ptrdiff_t*>(reinterpret_cast<const char*>(l) + g_off_tls_offset);
    auto modid = *reinterpret_cast<const size_t*>(reinterpret_cast<const char*>(l) + g_off_tls_modid);
    // 0: no TLS; -1: forced dynamic TLS (reached through __tls_get_addr, lazily).
    if (modid == 0 || off == 0 || off == -1) continue;
    Image img{modid, nullptr, 0, 0};
    dl_iterate_phdr(find_image, &img);
    if (!img.data && img.memsz == 0) continue;
    gmem_for_each_tcb([&](void* tcb) {
      char* dest = static_cast<char*>(tcb) - off;
      memcpy(dest, img.data, img.filesz);
      memset(dest + img.filesz, 0, img.memsz - img.filesz);
    });
  }
}

}  // namespace

namespace mnp {
void interpose_dl_init() {
  auto* d = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, "_thread_db_link_map_l_tls_offset", "GLIBC_PRIVATE"));
  auto* m = static_cast<const uint32_t*>(dlvsym(RTLD_DEFAULT, "_thread_db_link_map_l_tls_modid", "GLIBC_PRIVATE"));
  if (!d || !m || d[0] != 64 || m[0] != 64) {
    raw_print("warning: link_map layout unknown; dlopen'ed initial-exec TLS is not initialised in threads");
    return;
  }
  g_off_tls_offset = d[2];
  g_off_tls_modid = m[2];
  LockGuard lk(g_dl_lock);
  mark_all_locked();
}
}  // namespace mnp

extern "C" MNP_EXPORT void* dlopen(const char* file, int mode) noexcept {
  void* h = real_dlopen(file, mode);
  if (h && runtime_up) sync_static_tls();
  return h;
}
