// core/base.h — what every core file needs: fatal(), CHECK/DCHECK, raw
// syscalls (arch/x86_64/machine.h) and never-allocating output.
//
// Runtime code runs on a G's TLS more often than not (park, ready, wake-ups
// happen on the caller's stack), so it must never touch errno: every syscall
// the runtime makes goes through raw_syscall*, which returns -errno instead
// of setting it. fatal() and raw_print() use only write(2).
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "arch/x86_64/machine.h"

#if MNP_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define MNP_LIKELY(x) __builtin_expect(!!(x), 1)
#define MNP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MNP_NOINLINE __attribute__((noinline))
#define MNP_HIDDEN __attribute__((visibility("hidden")))
#define MNP_EXPORT __attribute__((visibility("default")))
// For large zero-initialised tables a process may never touch: they go to
// .lbss, which the linker places after all of .bss, so that the small
// variables every process writes at start-up share a few pages instead of
// being spread between the tables (each first write to a page is a page
// fault: about 13 us on the no-FSGSBASE VM).
#define MNP_COLD_BSS __attribute__((section(".lbss.mnp")))
// For code every process runs at start-up or exit, and a fork child before
// its exec: GNU ld puts .text.startup near the front of the text, with the
// PLT, so such a process maps the shim's code with one page fault instead of
// one per 64 KiB that code is spread over (docs/ARCHITECTURE.md, "Start-up",
// step 6).
#define MNP_STARTUP __attribute__((section(".text.startup")))
// For variables start-up (or a fork child) writes or reads: .data1 is
// gathered from all objects into one place right before .bss, in the page
// the loader already writes when it clears the end of the data segment, so
// they cost no page fault of their own. A variable written often by other
// threads does not belong here, beside ones every call reads.
#define MNP_START_DATA __attribute__((section(".data1")))

// First byte of the object the runtime is linked into and end of its text
// (set by the linker).
extern "C" const char __ehdr_start[] MNP_HIDDEN;
extern "C" const char __etext[] MNP_HIDDEN;

namespace mnp {

[[noreturn]] void fatal(const char* msg);

// System calls of the runtime's own that a seccomp filter traps (SIGSYS,
// SECCOMP_RET_TRAP: Firefox's sandbox refuses pwritev2 and mincore).
// seccomp_refused_by_runtime, first thing in the trampoline of a program's
// SIGSYS handler, answers a trap of one of the runtime's own calls with
// -ENOSYS in the interrupted context (the program's handler would end the
// process) and records what the runtime then does without:
// kRefusedNowaitIo, the RWF_NOWAIT reads and writes (the real call is
// handed off instead). A refused FS base write is fatal, with one line: no
// G could be switched. (sysmon's mincore is not among them: sysmon blocks
// SIGSYS, so it does without mincore as soon as a filter is seen.)
// kSeccompSeen: a filter exists (seccomp_filter_seen asks PR_GET_SECCOMP
// until one does; a trap of that question answers it): no mincore and no
// asynchronous preemption from then on (libunwind's walk calls mincore in
// a handler that blocks SIGSYS, where a trap would end the process).
enum : uint32_t { kRefusedNowaitIo = 1, kSeccompSeen = 2 };
extern uint32_t g_refused_calls;
inline bool runtime_call_refused(uint32_t what) { return __atomic_load_n(&g_refused_calls, __ATOMIC_RELAXED) & what; }
// The program is installing a seccomp filter (prctl PR_SET_SECCOMP, the
// seccomp call): what it allows is unknown, and one that kills (sshd's
// sandbox) gives no trap to learn from, so the runtime's own unusual calls
// stop now, as after a trap (kSeccompSeen, kRefusedNowaitIo).
inline void seccomp_filter_coming() {
  __atomic_fetch_or(&g_refused_calls, kSeccompSeen | kRefusedNowaitIo, __ATOMIC_RELAXED);
}
bool seccomp_refused_by_runtime(int sig, const siginfo_t* si, void* uc);
bool seccomp_filter_seen();
// Writes msg to stderr with a "mnpthread: " prefix; no allocation, no locks.
void raw_print(const char* msg);
// The same for the concatenation of parts (one line, up to ~500 bytes).
void raw_print(std::initializer_list<const char*> parts);
// Appends decimal/hex representations to a caller buffer; returns new end.
char* fmt_u64(char* p, char* end, uint64_t v);
char* fmt_hex(char* p, char* end, uint64_t v);  // 0x and lower-case digits
char* fmt_str(char* p, char* end, const char* s);

#define MNP_STR2(x) #x
#define MNP_STR(x) MNP_STR2(x)
#define CHECK(cond)                                                                                        \
  do {                                                                                                     \
    if (MNP_UNLIKELY(!(cond))) ::mnp::fatal("check failed: " #cond " at " __FILE__ ":" MNP_STR(__LINE__)); \
  } while (0)
#ifdef MNP_DEBUG_CHECKS
#define DCHECK(cond) CHECK(cond)
#else
#define DCHECK(cond)    \
  do {                  \
    (void)sizeof(cond); \
  } while (0)
#endif

// Clears AddressSanitizer's poison from [p, p+n); nothing without ASan
// (-Dsanitize=address). The frames of a stack that is left for good keep
// their red zones in ASan's shadow, and memory the runtime maps there later
// with raw mmap would inherit them.
inline void san_unpoison(void* p, size_t n) {
#if MNP_ASAN
  __asan_unpoison_memory_region(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// After a long jump ASan did not see (glibc's unwinding for pthread_exit
// and cancellation ends in its own internal longjmp): clears the poison
// the discarded frames left between lo, the low end of the stack, and the
// caller's frame. Nothing without ASan.
__attribute__((always_inline)) inline void san_unpoison_below(void* lo) {
#if MNP_ASAN
  char* here = static_cast<char*>(__builtin_frame_address(0));
  if (lo && here > lo) __asan_unpoison_memory_region(lo, static_cast<size_t>(here - static_cast<char*>(lo)));
#else
  (void)lo;
#endif
}

inline int raw_gettid() { return static_cast<int>(raw_syscall(SYS_gettid)); }

// Sets a to v unless it holds v already. For a fork child's resets: most
// fork children exec next, and a store to a page of the parent's is a
// copy-on-write fault even when it writes what is there ("Start-up").
template <typename T, typename V>
inline void store_changed(std::atomic<T>& a, V v) {
  if (a.load(std::memory_order_relaxed) != static_cast<T>(v)) a.store(static_cast<T>(v), std::memory_order_relaxed);
}
template <typename T, typename V>
inline void store_changed(T& a, V v) {
  if (a != static_cast<T>(v)) a = static_cast<T>(v);
}

// The set bits of x. Not __builtin_popcountll: without -mpopcnt that is a
// call into libgcc's code at the end of the shim's text, one more page for a
// process to fault in when start-up counts a mask ("Start-up").
constexpr int bits_set(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

// Sleeps ns nanoseconds in the kernel (nanosleep, no wrapper of the
// shim's); an interruption just ends it early.
inline void raw_sleep_ns(int64_t ns) {
  struct timespec ts = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  raw_syscall(SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
}

// pc lies in mnpthread's own code: a signal that interrupted it found the
// runtime half-way through something (a handler must not act there).
inline bool in_runtime_text(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(__ehdr_start) && pc < reinterpret_cast<uintptr_t>(__etext);
}

// Keeps the caller's errno across libc calls the runtime makes on its
// behalf (malloc and the dynamic linker's TLS functions may set it even
// when they succeed).
struct ErrnoKeeper {
  int saved = errno;
  ErrnoKeeper() = default;
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;
  ~ErrnoKeeper() { errno = saved; }
};

// Monotonic nanoseconds via the vDSO-backed clock_gettime (does not touch errno
// on success, and CLOCK_MONOTONIC cannot fail).
int64_t nanotime();

}  // namespace mnp
