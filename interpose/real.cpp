// interpose/real.cpp — finds the real function behind an interposer
// (interpose/real.h).
#include "interpose/real.h"

#include <dlfcn.h>

namespace mnp {
MNP_STARTUP void* real_sym(const char* name, const char* version) {
  void* p = version ? dlvsym(RTLD_NEXT, name, version) : nullptr;
  if (!p) p = dlsym(RTLD_NEXT, name);
  if (!p) {
    char buf[128];
    char* e = buf + sizeof buf - 1;
    char* q = fmt_str(buf, e, "cannot find the real ");
    q = fmt_str(q, e, name);
    *q = 0;
    fatal(buf);
  }
  return p;
}

namespace {
// The i-th of the NUL-separated strings in s.
MNP_STARTUP const char* nth(const char* s, unsigned i) {
  for (; i > 0; i--)
    while (*s++) {
    }
  return s;
}
}  // namespace

MNP_STARTUP void* real_lookup(RealIndex i) {
  const char* version = nth(kRealVersions, i);
  return real_sym(nth(kRealNames, i), *version ? version : nullptr);
}

MNP_STARTUP void* real_resolve(RealIndex i) {
  void* p = real_lookup(i);
  g_real_fn[i].store(p, std::memory_order_relaxed);
  return p;
}
}  // namespace mnp
