// core/base.cpp — fatal error path and raw output.
#include "core/base.h"
#include "core/sched.h"

#include <time.h>
#include <ucontext.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

namespace mnp {

uint32_t g_refused_calls = 0;

namespace {
constexpr int kSysSeccomp = 1;  // SIGSYS si_code of a seccomp trap (SYS_SECCOMP in the kernel's headers)
}  // namespace

bool seccomp_filter_seen() {
  if (runtime_call_refused(kSeccompSeen)) return true;
  if (raw_syscall(SYS_prctl, PR_GET_SECCOMP) != SECCOMP_MODE_FILTER) return false;
  __atomic_fetch_or(&g_refused_calls, kSeccompSeen, __ATOMIC_RELAXED);  // filters are never removed
  return true;
}

bool seccomp_refused_by_runtime(int sig, const siginfo_t* si, void* ucv) {
  if (sig != SIGSYS || !si || si->si_code != kSysSeccomp || !ucv) return false;
  auto* pc = static_cast<const char*>(si->si_call_addr);
  if (pc < __ehdr_start || pc >= __etext) return false;  // the program's own call: its handler's
  auto* uc = static_cast<ucontext_t*>(ucv);
  // Only the calls the runtime makes for itself: the shim also makes the
  // program's own calls (connect, sendmsg, kill, ...) with raw system call
  // instructions, and those traps are the program's handler's to emulate.
  long answer = -ENOSYS;
  uint32_t what = kSeccompSeen;
  switch (si->si_syscall) {
    case SYS_preadv2:
    case SYS_pwritev2:
      what |= kRefusedNowaitIo;
      break;
    case SYS_prctl:  // the probe itself (seccomp_filter_seen): a trap proves a filter
      if (uc->uc_mcontext.gregs[REG_RDI] != PR_GET_SECCOMP) return false;
      answer = SECCOMP_MODE_FILTER;
      break;
    case SYS_arch_prctl:
      fatal(
          "a seccomp filter refuses arch_prctl(ARCH_SET_FS), which switching threads needs on a CPU without "
          "FSGSBASE; run this program without mnpthread");
    default:
      return false;
  }
  __atomic_fetch_or(&g_refused_calls, what, __ATOMIC_RELAXED);
  uc->uc_mcontext.gregs[REG_RAX] = answer;
  return true;
}

char* fmt_str(char* p, char* end, const char* s) {
  while (*s && p < end) *p++ = *s++;
  return p;
}

char* fmt_u64(char* p, char* end, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n && p < end) *p++ = tmp[--n];
  return p;
}

char* fmt_hex(char* p, char* end, uint64_t v) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  p = fmt_str(p, end, "0x");
  while (n && p < end) *p++ = tmp[--n];
  return p;
}

void raw_print(std::initializer_list<const char*> parts) {
  char buf[512];
  char* end = buf + sizeof buf - 1;
  char* p = fmt_str(buf, end, "mnpthread: ");
  for (const char* s : parts) p = fmt_str(p, end, s);
  if (p == buf || p[-1] != '\n') *p++ = '\n';
  raw_syscall(SYS_write, 2, reinterpret_cast<long>(buf), p - buf);
}

void raw_print(const char* msg) { raw_print({msg}); }

// context.S: the FS base write of a switch (arch_prctl) did not succeed. A
// filter that traps it (SECCOMP_RET_TRAP) with a SIGSYS handler of the
// program's own, installed by the raw system call so that the runtime
// never sees it, leaves any value in rax (Chromium's sandboxed children:
// 158), one that refuses it EPERM; either way the next G would run on the
// last one's TLS.
extern "C" [[noreturn]] void mnp_fs_write_failed(long r) {
  (void)r;
  fatal(
      "arch_prctl(ARCH_SET_FS) failed: a seccomp filter refuses it (Chromium's sandbox does), and switching "
      "threads needs it on a CPU without FSGSBASE; run this program without mnpthread, or without its sandbox");
}

[[noreturn]] void fatal(const char* msg) {
  char buf[512];
  char* end = buf + sizeof buf - 1;
  char* p = fmt_str(buf, end, "mnpthread: fatal error: ");
  p = fmt_str(p, end, msg);
  *p++ = '\n';
  raw_syscall(SYS_write, 2, reinterpret_cast<long>(buf), p - buf);
  static int dumping = 0;  // constinit; second fatal while dumping skips it
  if (__atomic_exchange_n(&dumping, 1, __ATOMIC_ACQ_REL) == 0) dump_sched_state_for_fatal();
  __builtin_trap();
}

int64_t nanotime() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace mnp
