// interpose/real.h — the real (glibc) versions of interposed symbols.
//
// Every interposer reaches its real function through a Real<F>: a constant
// naming one symbol of the table below, whose function pointer is looked up
// on first use. Nothing is resolved ahead of time, because an interposer can
// be called before the shim's own ELF constructor has run: the loader runs
// the constructors of the program's libraries first (libnuma calls
// getdelim, OpenBLAS pthread_create, jemalloc syscall, libcap-ng open,
// libGLdispatch dlopen, all before main), and a preloaded allocator can call
// into the shim from its very first malloc.
//
// Resolution is dlvsym(RTLD_NEXT), falling back to dlsym: neither allocates
// when the symbol exists. Two threads racing on the first use both look the
// symbol up and store the same value; the pointer is read with a relaxed
// load (a function address needs no ordering with anything else).
//
// The Real constants are made here, from interpose/table.def, and nowhere
// else: real_NAME for every symbol the table lists, of the type of glibc's
// own declaration (decltype), so a name, a version or a type is written
// once. The few glibc symbols no header declares are declared below, with
// the prototype the interposer defines. Names and versions are one string
// each in read-only data, reached by index, and the looked-up pointers one
// array in .bss: a table of pointers to names needed a relocation per
// name at load time and made two pages of .data dirty in every process
// (about 13 us a page fault on the no-FSGSBASE VM). The fast path is one
// RIP-relative load of the pointer and an indirect call, as before.
#pragma once

// Every header that declares a symbol of table.def.
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
// glibc 2.36's sys/pidfd.h lacks __BEGIN_DECLS: C++ would take pidfd_open
// for a C++ function.
extern "C" {
#include <sys/pidfd.h>
}

#include <atomic>
#include <string_view>
#include <utility>

#include "core/base.h"

// glibc's fortified longjmp (-D_FORTIFY_SOURCE): no public declaration.
extern "C" void __longjmp_chk(struct __jmp_buf_tag env[1], int val) noexcept __attribute__((noreturn));
// sigpause's two entries (BSD mask or X/Open signal; <signal.h> maps
// sigpause to __xpg_sigpause under _XOPEN_SOURCE): no public declaration.
extern "C" int __sigpause(int sig_or_mask, int is_sig);
extern "C" int __xpg_sigpause(int sig);

namespace mnp {

// Symbols the shim calls through a Real but does not interpose (so not in
// table.def, which is also the export list).
// X(name, glibc version)
#define MNP_REAL_ONLY(X)       \
  X(__chk_fail, "GLIBC_2.3.4") \
  X(ftrylockfile, "GLIBC_2.2.5")

// dlvsym(RTLD_NEXT, name, version), falling back to dlsym; fatal if absent.
void* real_sym(const char* name, const char* version);

// The index of every symbol with a real_NAME.
enum RealIndex : uint16_t {
#define MNP_REAL_INDEX(name, ...) kReal_##name,
#define MNP_SYM MNP_REAL_INDEX
#include "interpose/table.def"
#undef MNP_SYM
  MNP_REAL_ONLY(MNP_REAL_INDEX)
#undef MNP_REAL_INDEX
      kRealCount
};

// "name\0name\0...", and their versions the same way, in index order.
inline constexpr char kRealNames[] =
#define MNP_REAL_NAME(name, ...) #name "\0"
#define MNP_SYM MNP_REAL_NAME
#include "interpose/table.def"
#undef MNP_SYM
    MNP_REAL_ONLY(MNP_REAL_NAME)
#undef MNP_REAL_NAME
    ;
inline constexpr char kRealVersions[] =
#define MNP_REAL_VERSION(name, version, ...) version "\0"
#define MNP_SYM MNP_REAL_VERSION
#include "interpose/table.def"
#undef MNP_SYM
    MNP_REAL_ONLY(MNP_REAL_VERSION)
#undef MNP_REAL_VERSION
    ;

// The looked-up functions, by index (null until first use).
inline constinit std::atomic<void*> g_real_fn[kRealCount] = {};

// Looks symbol i up and stores it in g_real_fn[i].
[[gnu::noinline, gnu::cold]] void* real_resolve(RealIndex i);  // real.cpp
// Looks symbol i up without storing it, for a function called once per
// process (the first write to g_real_fn's page is a page fault).
void* real_lookup(RealIndex i);

template <typename F>
class Real {
 public:
  constexpr explicit Real(RealIndex i) : i_(i) {}
  Real(const Real&) = delete;
  Real& operator=(const Real&) = delete;

  F* get() const {
    void* p = g_real_fn[i_].load(std::memory_order_relaxed);
    if (__builtin_expect(p == nullptr, 0)) p = real_resolve(i_);
    return reinterpret_cast<F*>(p);
  }
  operator F*() const { return get(); }
  template <typename... A>
  decltype(auto) operator()(A&&... a) const {
    return get()(std::forward<A>(a)...);
  }

 private:
  RealIndex i_;
};

}  // namespace mnp

// glibc exports these, but no header declares them (or only under
// _FORTIFY_SOURCE, or in C only): the interposers' prototypes.
extern "C" {
int __libc_start_main(int (*main)(int, char**, char**), int argc, char** argv, void (*init)(), void (*fini)(),
                      void (*rtld_fini)(), void* stack_end) noexcept;
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) noexcept;
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) noexcept;
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, struct sockaddr* a,
                       socklen_t* alen) noexcept;
int __poll_chk(struct pollfd* fds, nfds_t n, int timeout, size_t fdslen) noexcept;
int __ppoll_chk(struct pollfd* fds, nfds_t n, const struct timespec* t, const sigset_t* mask, size_t fdslen) noexcept;
char* __fgets_chk(char* s, size_t size, int n, FILE* f);
size_t __fread_chk(void* p, size_t plen, size_t sz, size_t n, FILE* f);
ssize_t __pread_chk(int fd, void* b, size_t n, off_t o, size_t bl);
ssize_t __pread64_chk(int fd, void* b, size_t n, off64_t o, size_t bl);
int __isoc99_vfscanf(FILE* f, const char* fmt, va_list ap);
int __isoc99_vscanf(const char* fmt, va_list ap);
int __isoc99_fscanf(FILE* f, const char* fmt, ...);
int __isoc99_scanf(const char* fmt, ...);
sighandler_t bsd_signal(int sig, sighandler_t handler) noexcept;
int capset(void* hdr, void* data) noexcept;
int capget(void* hdr, void* data) noexcept;
[[noreturn]] void __chk_fail(void) noexcept;
}

namespace mnp {

// real_NAME: the real NAME. Naming the type of a function glibc marks
// deprecated (pthread_yield, siginterrupt) is no use of it, and the nonnull
// attributes a type loses as a template argument are not wanted here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#pragma GCC diagnostic ignored "-Wignored-attributes"
#define MNP_REAL_DEF(name, version, ...) inline constexpr Real<decltype(::name)> real_##name{kReal_##name};
#define MNP_SYM MNP_REAL_DEF
#include "interpose/table.def"
#undef MNP_SYM
MNP_REAL_ONLY(MNP_REAL_DEF)
#undef MNP_REAL_DEF
#pragma GCC diagnostic pop

// The class column of table.def (docs/ARCHITECTURE.md, "Blocking calls"),
// for compile-time checks: sym_class("pread") == SymClass::handoff.
enum class SymClass { life, park, poll, handoff, block, none, unlisted };
struct SymEntry {
  std::string_view name;
  SymClass cls;
};
inline constexpr SymEntry kSymTable[] = {
#define MNP_SYM(name, version, cls) {#name, SymClass::cls},
#include "interpose/table.def"
#undef MNP_SYM
};
constexpr SymClass sym_class(std::string_view name) {
  for (const SymEntry& e : kSymTable)
    if (e.name == name) return e.cls;
  return SymClass::unlisted;
}
// Bracketed by entersyscall/exitsyscall; block: the P handed off at once.
constexpr bool is_handed_off(SymClass c) { return c == SymClass::handoff || c == SymClass::block; }

// A null test on a parameter glibc declares __nonnull: the compiler takes
// such a pointer to be non-null and may drop a plain test (gcc does, clang
// warns), yet a program that passes null must get the real function's
// answer (EFAULT), not a crash in the interposer. The empty asm hides the
// attribute from the optimizer.
template <typename T>
inline bool null_arg(T* p) {
  asm("" : "+r"(p));
  return p == nullptr;
}

// One-time set-up of the families that need more than their real functions
// (hooks into core/, layout probes), run by the shim's constructor. Nothing
// an interposer needs to work may depend on these having run.
void interpose_dl_init();
void interpose_mutex_init();
void interpose_signal_init();
// After the runtime is up (Ms exist, glibc's SIGSETXID handler is installed).
void interpose_setxid_install_handler();
// At start-up, on the main G: wires it to M0 when the initial thread has an
// alternate signal stack enabled (wire.cpp).
void wire_adopt_start_altstack();
int real_runtime_thread_create(void* (*fn)(void*), void* arg);
// Flags of the program's handler for sig, or -1 if it has none (signal.cpp).
int program_signal_flags(int sig);
struct SigAct;
struct G;
// The program's handler for sig; false if it has none (signal.cpp).
bool program_signal_action(int sig, SigAct* out);
// CPU affinity of the G t as the kernel's sched_getaffinity (bytes
// filled, or -errno) and sched_setaffinity (0 or an errno value) answer
// (thread.cpp). set may be null (EFAULT, after the size checks: strace
// probes so), which glibc's nonnull pthread_ declarations do not allow.
long affinity_get_g(G* t, size_t size, cpu_set_t* set);
int affinity_set_g(G* t, size_t size, const cpu_set_t* set);
// Sends sig (1..64) to the G t, whose memory the caller keeps mapped, as
// tgkill sends it to a thread; 0 or an errno value (tid.cpp).
int signal_g(G* t, int sig);
// syscall(nr, a[0..5]) when nr takes a thread id and it is a G's (or nr is
// gettid on a G): true, with the result (-1 and errno on failure) in *ret.
bool tid_syscall(long nr, const long* a, long* ret);
// syscall(nr, a[0..5]) of a call that leaves state on the kernel thread
// (wire.cpp): wires the G; true when it also made the call (result in *ret).
bool wire_syscall(long nr, const long* a, long* ret);
// After a wait-family call: a child reaped ends one fork's wiring (wire.cpp).
void wire_note_wait(pid_t r, const int* status);
void wire_note_waitid(int r, const siginfo_t* si, int options);

}  // namespace mnp
