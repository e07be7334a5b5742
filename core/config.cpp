// core/config.cpp — the environment, parsed once at start-up.
//
// Every variable mnpthread reads is in kVars below: one table, the only
// place getenv is called (docs/ARCHITECTURE.md, "Configuration"). A bad value
// never stops the program: one line names the variable, the value, what is
// wanted and the default used instead.
//
//   MNP_PROCS    number of Ps. Default: CPUs in the affinity mask, lowered to
//                the cgroup v2 CPU quota (cpu.max) when one is set.
//   MNP_STACK    default stack size of a new thread, bytes with optional
//                K/M/G suffix. Default: RLIMIT_STACK as glibc does (8 MiB if
//                unlimited).
//   MNP_PREEMPT  0 turns asynchronous preemption off. Default 1.
//   MNP_SIGNAL   the runtime's own signal. Default SIGURG.
//   MNP_DEBUG    comma-separated schedtrace=MS, scheddetail=0|1, stackslabs=0|1,
//                compact=N.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/base.h"
#include "core/sched.h"

namespace mnp {

constexpr uint32_t kCompactMinDefault = 64;
MNP_START_DATA constinit Config g_config{1, 8u << 20, 4096, true, SIGURG, 0, false, true, kCompactMinDefault};

namespace {

constexpr uint32_t kMaxProcs = 1024;

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
  int fd = static_cast<int>(
      raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/sys/fs/cgroup/cpu.max"), O_RDONLY | O_CLOEXEC));
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

bool all_digits(const char* v) {
  if (!*v) return false;
  for (; *v; v++)
    if (*v < '0' || *v > '9') return false;
  return true;
}

bool parse_procs(const char* v) {
  uint64_t n;
  if (!all_digits(v) || !parse_size(v, &n) || n < 1 || n > kMaxProcs) return false;
  g_config.procs = static_cast<uint32_t>(n);
  return true;
}

bool parse_stack(const char* v) {
  uint64_t n;
  if (!parse_size(v, &n) || n < 16 * 1024 || n > (1ULL << 40)) return false;
  g_config.stack_size = (static_cast<size_t>(n) + 4095) & ~size_t{4095};
  return true;
}

bool parse_preempt(const char* v) {
  if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) return false;
  g_config.preempt = v[0] == '1';
  return true;
}

bool parse_signal(const char* v) {
  uint64_t n;
  if (!all_digits(v) || !parse_size(v, &n) || n < 1 || n > 64 || n == SIGKILL || n == SIGSTOP || n == 32 || n == 33)
    return false;
  g_config.signal = static_cast<int>(n);
  return true;
}

// Items are applied as they are read; a bad one makes the whole value
// reported (once), the good ones still count.
bool parse_debug(const char* v) {
  bool ok = true;
  while (*v) {
    const char* end = strchr(v, ',');
    size_t len = end ? static_cast<size_t>(end - v) : strlen(v);
    const char* eq = static_cast<const char*>(memchr(v, '=', len));
    char num[24] = {};
    size_t key = eq ? static_cast<size_t>(eq - v) : len;
    size_t nlen = eq ? len - key - 1 : 0;
    uint64_t n = 0;
    bool have_num = eq && nlen > 0 && nlen < sizeof num;
    if (have_num) {
      memcpy(num, eq + 1, nlen);
      have_num = all_digits(num) && parse_size(num, &n);
    }
    if (have_num && key == 10 && !strncmp(v, "schedtrace", key) && n > 0 && n < (1u << 31))
      g_config.schedtrace_ms = static_cast<int64_t>(n);
    else if (have_num && key == 11 && !strncmp(v, "scheddetail", key) && n <= 1) g_config.scheddetail = n == 1;
    else if (have_num && key == 10 && !strncmp(v, "stackslabs", key) && n <= 1) g_config.stack_slabs = n == 1;
    else if (have_num && key == 7 && !strncmp(v, "compact", key) && n < (1u << 31))
      g_config.compact_min = static_cast<uint32_t>(n);
    else ok = false;
    v += len;
    if (*v == ',') v++;
  }
  return ok;
}

struct Var {
  const char* name;
  bool (*parse)(const char* value);  // false: rejected, the default stays
  const char* want;                  // what is wanted, and the default used
};
constexpr Var kVars[] = {
    {"MNP_PROCS", parse_procs, "want an integer from 1 to 1024; using the number of usable CPUs"},
    {"MNP_STACK", parse_stack, "want a size from 16K to 1T (e.g. 256K, 8M); using RLIMIT_STACK"},
    {"MNP_PREEMPT", parse_preempt, "want 0 or 1; preemption stays on"},
    {"MNP_SIGNAL", parse_signal, "want a signal number 1..64 other than SIGKILL, SIGSTOP, 32, 33; using SIGURG (23)"},
    {"MNP_DEBUG", parse_debug,
     "known items are schedtrace=MS (MS > 0), scheddetail=0|1, stackslabs=0|1 and compact=N; the others are "
     "ignored"},
};

}  // namespace

MNP_STARTUP void config_init() {
  cpu_set_t set;
  CPU_ZERO(&set);  // the kernel writes only the bytes it knows about
  uint32_t cpus = 1;
  if (raw_syscall(SYS_sched_getaffinity, 0, sizeof set, reinterpret_cast<long>(&set)) > 0) {
    // Counted here, not with CPU_COUNT: glibc's counter is one more page
    // of its code for every process to fault in.
    int c = 0;
    for (unsigned long word : set.__bits) c += bits_set(word);
    if (c > 0) cpus = static_cast<uint32_t>(c);
  }
  if (uint32_t q = cgroup_cpu_limit(); q && q < cpus) cpus = q;
  if (cpus > kMaxProcs) cpus = kMaxProcs;
  g_config.procs = cpus;

  struct rlimit rl;
  size_t stack = 8u << 20;
  if (raw_syscall(SYS_getrlimit, RLIMIT_STACK, reinterpret_cast<long>(&rl)) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur >= 64 * 1024)
    stack = static_cast<size_t>(rl.rlim_cur);
  g_config.stack_size = (stack + 4095) & ~size_t{4095};
  g_config.guard_size = 4096;
  g_config.preempt = true;
  g_config.signal = SIGURG;
  g_config.schedtrace_ms = 0;
  g_config.scheddetail = false;
  g_config.stack_slabs = true;
  g_config.compact_min = kCompactMinDefault;

  for (const Var& var : kVars)
    if (const char* v = getenv(var.name); v && !var.parse(v)) bad_value(var.name, v, var.want);
}

}  // namespace mnp
