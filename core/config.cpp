// core/config.cpp — the environment, parsed once at start-up.
//
// Every variable mnpthread reads is in kVars below (one table; see
// docs/ARCHITECTURE.md, "Configuration"). A bad value never stops the
// program: one line names the variable and the default used instead.
//
//   MNP_PROCS   number of Ps. Default: CPUs in the affinity mask, lowered to
//               the cgroup v2 CPU quota (cpu.max) when one is set.
//   MNP_STACK   default stack size of a new thread, bytes with optional
//               K/M/G suffix. Default: RLIMIT_STACK as glibc does (8 MiB if
//               unlimited).
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {
namespace {

constinit Config g_config{1, 8u << 20, 4096};

constexpr uint32_t kMaxProcs = 1024;

struct VarDoc {
  const char* name;
  const char* what;
};
constexpr VarDoc kVars[] = {
    {"MNP_PROCS", "number of Ps (default: usable CPUs)"},
    {"MNP_STACK", "default thread stack size (default: RLIMIT_STACK, 8M if unlimited)"},
};

void bad_value(const char* var, const char* val, const char* dflt_desc) {
  char buf[256];
  char* e = buf + sizeof buf - 1;
  char* p = fmt_str(buf, e, "ignoring ");
  p = fmt_str(p, e, var);
  p = fmt_str(p, e, "=\"");
  p = fmt_str(p, e, val);
  p = fmt_str(p, e, "\": ");
  p = fmt_str(p, e, dflt_desc);
  *p = 0;
  raw_print(buf);
}

// Parses a decimal with optional K/M/G suffix; false on junk or overflow.
bool parse_size(const char* s, uint64_t* out) {
  if (!*s) return false;
  uint64_t v = 0;
  const char* p = s;
  while (*p >= '0' && *p <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  }
  if (p == s) return false;
  uint64_t mul = 1;
  if (*p == 'k' || *p == 'K') mul = 1ULL << 10, p++;
  else if (*p == 'm' || *p == 'M') mul = 1ULL << 20, p++;
  else if (*p == 'g' || *p == 'G') mul = 1ULL << 30, p++;
  if (*p == 'b' || *p == 'B') p++;
  if (*p) return false;
  if (v > UINT64_MAX / mul) return false;
  *out = v * mul;
  return true;
}

uint32_t cgroup_cpu_limit() {
  int fd = static_cast<int>(raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/sys/fs/cgroup/cpu.max"), O_RDONLY | O_CLOEXEC));
  if (fd < 0) return 0;
  char buf[64] = {};
  long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1);
  raw_syscall(SYS_close, fd);
  if (n <= 0 || buf[0] == 'm') return 0;  // "max 100000": no quota
  uint64_t quota = 0, period = 0;
  char* p = buf;
  while (*p >= '0' && *p <= '9') quota = quota * 10 + static_cast<uint64_t>(*p++ - '0');
  while (*p == ' ') p++;
  while (*p >= '0' && *p <= '9') period = period * 10 + static_cast<uint64_t>(*p++ - '0');
  if (!quota || !period) return 0;
  return static_cast<uint32_t>((quota + period - 1) / period);
}

}  // namespace

const Config& config() { return g_config; }

void config_init() {
  (void)kVars;
  cpu_set_t set;
  CPU_ZERO(&set);  // the kernel writes only the bytes it knows about
  uint32_t cpus = 1;
  if (raw_syscall(SYS_sched_getaffinity, 0, sizeof set, reinterpret_cast<long>(&set)) > 0) {
    int c = CPU_COUNT(&set);
    if (c > 0) cpus = static_cast<uint32_t>(c);
  }
  if (uint32_t q = cgroup_cpu_limit(); q && q < cpus) cpus = q;
  if (cpus > kMaxProcs) cpus = kMaxProcs;
  g_config.procs = cpus;
  if (const char* v = getenv("MNP_PROCS")) {
    uint64_t n;
    if (parse_size(v, &n) && n >= 1 && n <= kMaxProcs && v[strlen(v) - 1] >= '0' && v[strlen(v) - 1] <= '9')
      g_config.procs = static_cast<uint32_t>(n);
    else
      bad_value("MNP_PROCS", v, "want an integer from 1 to 1024; using the number of usable CPUs");
  }

  struct rlimit rl;
  size_t stack = 8u << 20;
  if (raw_syscall(SYS_getrlimit, RLIMIT_STACK, reinterpret_cast<long>(&rl)) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur >= 64 * 1024)
    stack = static_cast<size_t>(rl.rlim_cur);
  stack = (stack + 4095) & ~size_t{4095};
  g_config.stack_size = stack;
  if (const char* v = getenv("MNP_STACK")) {
    uint64_t n;
    if (parse_size(v, &n) && n >= 16 * 1024 && n <= (1ULL << 40))
      g_config.stack_size = (static_cast<size_t>(n) + 4095) & ~size_t{4095};
    else
      bad_value("MNP_STACK", v, "want a size from 16K to 1T (e.g. 256K, 8M); using RLIMIT_STACK");
  }
  g_config.guard_size = 4096;
}

}  // namespace mnp
