/* core/sema_c.h — the sema table (core/sema.h) for the shim's C code
 * (interpose/once.c, built as C with -fexceptions). Defined in
 * core/sema.cpp, which includes this header so the two cannot disagree. */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* sema_wait(addr, val, kNever): parks while *(uint32_t*)addr == val. */
__attribute__((visibility("hidden"))) int mnp_sema_wait32(void* addr, uint32_t val);
/* sema_wake(addr, all). */
__attribute__((visibility("hidden"))) int mnp_sema_wake_all(void* addr);

#ifdef __cplusplus
}
#endif
