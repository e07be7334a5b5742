// shim/init.cpp — start-up of libmnpthread.so.
//
// The dynamic loader runs the program's _start, which calls
// __libc_start_main(main, ...). We interpose it and hand glibc our own
// mnp_main instead; glibc runs the constructors and then mnp_main on the
// initial thread, which builds the runtime (Ps, M0, the main G) and calls the
// program's main as the main G. The runtime exists from the first
// instruction of main() on; code that runs earlier (constructors) gets the
// kernel-blocking paths. The shim's one ELF constructor,
// shim_setup_families, only prepares interposer families (their real
// functions are found lazily anyway, interpose/real.h); it starts nothing.
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/netpoll.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/tcb.h"
#include "interpose/real.h"
#include "shim/mnp.h"

using namespace mnp;

namespace {

using MainFn = int(int, char**, char**);
MNP_START_DATA constinit MainFn* g_user_main = nullptr;
// The main G's outermost cancellation buffer (mnp_main's frame).
MNP_START_DATA constinit __pthread_unwind_buf_t* g_main_cancel = nullptr;

// One-time set-up of the interposer families that need more than their
// real functions (those are found lazily on first use, interpose/real.h).
// Runs as the shim's ELF constructor; the program's libraries' constructors
// may already have run and called interposers.
__attribute__((constructor)) MNP_STARTUP void shim_setup_families() {
  interpose_dl_init();
  interpose_mutex_init();
  interpose_signal_init();
}

MNP_STARTUP void shim_start() {
  set_os_thread_create(real_runtime_thread_create);
  if (!sched_init_main()) {
    raw_print("refusing to start (see the line above); run the program without LD_PRELOAD");
    _exit(127);
  }
  wire_adopt_start_altstack();
  // Nothing else a process with one thread does not need: sysmon (a real
  // thread; glibc turns multi-threaded when the first runtime thread is
  // made, before a second G can run, and real_runtime_thread_create then
  // wraps glibc's SIGSETXID handler), the netpoller's fds and the Ms start
  // when first needed.
  sysmon_init();
  sched_install_fork_handlers();
}

extern "C" [[noreturn]] void mnp_call_main(MainFn* main, int argc, char** argv, char** envp);

// The main G's exit after pthread_exit from main: the base frame of what it
// runs then (key and thread_local destructors, core/sched.cpp's
// g_exit_current), in mnp_gbase as a preemption's stack walk needs; it
// is not on the main G's stack before, mnp_call_main is (start-up keeps
// off mnp_gbase's page: docs/ARCHITECTURE.md, "Start-up").
[[noreturn]] MNP_GBASE void main_g_exit() { g_exit_current(tcb_field<void*>(main_g()->tcb, tcbo::kResult)); }

MNP_STARTUP int mnp_main(int argc, char** argv, char** envp) {
  shim_start();
  // The main G's outermost cancellation buffer: pthread_exit from main
  // unwinds to here (not into glibc's start code, which would end M0's
  // kernel thread) and the process lives on until the last thread ends.
  __pthread_unwind_buf_t ub;
  if (__sigsetjmp(reinterpret_cast<struct __jmp_buf_tag*>(ub.__cancel_jmp_buf), 0) == 0) {
    __pthread_register_cancel(&ub);
    g_main_cancel = &ub;
    mnp_call_main(g_user_main, argc, argv, envp);  // never returns: mnp_main_returned
  }
#if MNP_ASAN
  // Unwound here: the main thread's stack below this frame (core/base.h).
  pthread_attr_t a;
  void* lo = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &a) == 0) {
    pthread_attr_getstack(&a, &lo, &size);
    pthread_attr_destroy(&a);
  }
  san_unpoison_below(lo);
#endif
  main_g_exit();
}

}  // namespace

// Where main's return goes (arch/x86_64/start.S), with the stack
// pointer main's return left, which may be deeper than its caller's: what
// glibc's start code does after main.
extern "C" [[noreturn]] MNP_HIDDEN MNP_STARTUP void mnp_main_returned(int result) {
  __pthread_unregister_cancel(g_main_cancel);
  exit(result);
}

extern "C" {

MNP_EXPORT MNP_STARTUP int __libc_start_main(MainFn* main, int argc, char** argv, void (*init)(), void (*fini)(),
                                             void (*rtld_fini)(), void* stack_end) noexcept {
  g_user_main = main;
  // Not through real___libc_start_main: its first use would write
  // g_real_fn's page, one more page fault for every process.
  auto* start = reinterpret_cast<decltype(&__libc_start_main)>(real_lookup(kReal___libc_start_main));
  return start(mnp_main, argc, argv, init, fini, rtld_fini, stack_end);
}

// The shim's DT_FINI (-fini in shim/meson.build). The linker's default,
// _fini, does nothing either but sits after all of the text: one more page
// fault at every process exit.
MNP_HIDDEN MNP_STARTUP void mnp_fini() {}

MNP_EXPORT const char* mnp_version(void) { return "0.1.0"; }
MNP_EXPORT int mnp_procs(void) { return static_cast<int>(config().procs); }
MNP_EXPORT int mnp_mcount(void) { return static_cast<int>(stat_mcount()); }

}  // extern "C"
