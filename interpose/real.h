// interpose/real.h — finding the real (glibc) versions of interposed symbols.
#pragma once

#include <dlfcn.h>

#include "core/base.h"

namespace mnp {

// dlvsym(RTLD_NEXT, name, version), falling back to dlsym; fatal if absent.
void* real_sym(const char* name, const char* version);

template <typename F>
inline void resolve_real(F*& out, const char* name, const char* version) {
  out = reinterpret_cast<F*>(real_sym(name, version));
}

// Per-family initialisers, called once by shim_init before the runtime starts.
void interpose_thread_init();
void interpose_setxid_init();
void interpose_stdio_init();
void interpose_dl_init();
void interpose_sched_init();
void interpose_time_init();
void interpose_syscall_init();
void interpose_mutex_init();
void interpose_cond_init();
void interpose_sem_init();
void interpose_rwlock_init();
void interpose_futex_init();
void interpose_net_init();
void interpose_poll_init();
void interpose_variadic_init();
void interpose_scanf_init();
void interpose_signal_init();
// After the runtime is up (Ms exist, glibc's SIGSETXID handler is installed).
void interpose_setxid_install_handler();
int real_thread_create_for_m(void* (*fn)(void*), void* arg);
// Flags of the program's handler for sig, or -1 if it has none (signal.cpp).
int program_signal_flags(int sig);

}  // namespace mnp
