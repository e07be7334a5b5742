// interpose/real.cpp — finds the real function behind an interposer
// (interpose/real.h).
#include "interpose/real.h"

#include <dlfcn.h>

namespace mnp {
void* real_sym(const char* name, const char* version) {
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

void* RealSym::resolve() const {
  void* p = real_sym(name_, version_);
  fn_.store(p, std::memory_order_relaxed);
  return p;
}
}  // namespace mnp
