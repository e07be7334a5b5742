/* arch/x86_64/context_offsets.h — the layout context.S and C++ share.
 *
 * Plain #defines, included by context.S (through the C preprocessor) and by
 * context.h, whose static_asserts check them against struct Context and
 * context.cpp's Frame: one definition, checked where C++ sees it. */
#ifndef MNP_ARCH_X86_64_CONTEXT_OFFSETS_H
#define MNP_ARCH_X86_64_CONTEXT_OFFSETS_H

/* struct Context */
#define MNP_CTX_SP 0
#define MNP_CTX_FS 8
/* The frame mnp_ctx_switch leaves at Context::sp: fpu control words (8),
 * r15 r14 r13 r12 rbx rbp (48), return address (8). */
#define MNP_CTX_FRAME 64

#endif
