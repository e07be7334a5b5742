/* arch/x86_64/context.S — context switch for mnpthread.
 *
 * Saved frame at Context::sp (lowest address first), 64 bytes, sp 16-aligned:
 *
 *   +0   MXCSR (4 bytes) | x87 control word (2 bytes) | pad (2)
 *   +8   r15
 *   +16  r14
 *   +24  r13
 *   +32  r12
 *   +40  rbx
 *   +48  rbp
 *   +56  return address (where the context resumes)
 *
 * void mnp_ctx_switch(Context *from  = rdi, const Context *to = rsi,
 *                     void (*fn)(void*) = rdx, void *arg = rcx)
 */
#include "context_offsets.h"

#if MNP_ASAN
/* context.cpp's mnp_ctx_switch wraps this one with the sanitizer's fiber
 * calls (context.h, "Sanitizers"). */
#define mnp_ctx_switch mnp_ctx_switch_raw
#endif

        .text
        .globl  mnp_ctx_switch
        .hidden mnp_ctx_switch
        .type   mnp_ctx_switch, @function
        .p2align 4
mnp_ctx_switch:
        .cfi_startproc
        pushq   %rbp                    /* callee-saved registers of the caller */
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp                /* room for the FP control words */
        stmxcsr (%rsp)                  /* SSE rounding/exception mask state */
        fnstcw  4(%rsp)                 /* x87 control word */
        movq    %rsp, MNP_CTX_SP(%rdi)  /* from is now fully saved */

        movq    MNP_CTX_FS(%rsi), %rax  /* target FS base */
        cmpq    MNP_CTX_FS(%rdi), %rax  /* unchanged? skip the write */
        je      2f
        cmpl    $0, mnp_arch_use_wrfsbase(%rip)
        je      1f
        wrfsbase %rax                   /* fast path: no kernel entry */
        jmp     2f
1:      movq    %rsi, %r12              /* keep to/fn/arg across the syscall */
        movq    %rdx, %r13
        movq    %rcx, %r14
        movl    $158, %eax              /* SYS_arch_prctl */
        movl    $0x1002, %edi           /* ARCH_SET_FS */
        movq    MNP_CTX_FS(%r12), %rsi
        syscall                         /* clobbers rax, rcx, r11 */
        testq   %rax, %rax              /* refused (a seccomp filter): no way on */
        jnz     4f
        movq    %r12, %rsi
        movq    %r13, %rdx
        movq    %r14, %rcx
2:      movq    MNP_CTX_SP(%rsi), %rsp  /* now on the target stack */
        testq   %rdx, %rdx
        jz      3f
        movq    %rcx, %rdi
        callq   *%rdx                   /* on-top call; rsp is 16-aligned here */
3:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        retq
4:      movq    %rax, %rdi              /* still on from's stack and FS; rsp 16-aligned */
        callq   mnp_fs_write_failed     /* never returns */
        ud2
        .cfi_endproc
        .size   mnp_ctx_switch, .-mnp_ctx_switch
        .hidden mnp_fs_write_failed

/* First code of a fresh context: ctx_make stored entry in r13, arg in r12.
 * rsp is 16-aligned here (the frame above was popped by ret). */
        .globl  mnp_ctx_entry
        .hidden mnp_ctx_entry
        .type   mnp_ctx_entry, @function
        .p2align 4
mnp_ctx_entry:
        .cfi_startproc
        .cfi_undefined rip              /* outermost frame for unwinders */
        xorl    %ebp, %ebp
        movq    %r12, %rdi
        callq   *%r13
        ud2                             /* entry functions never return */
        .cfi_endproc
        .size   mnp_ctx_entry, .-mnp_ctx_entry

/* mnp_call_on_stack(sp, fn, arg): calls fn(arg) with the stack pointer
 * at sp (16-byte aligned, below any live data), then returns on the
 * caller's stack. */
        .globl  mnp_call_on_stack
        .hidden mnp_call_on_stack
        .type   mnp_call_on_stack, @function
        .p2align 4
mnp_call_on_stack:
        .cfi_startproc
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        movq    %rdi, %rsp
        movq    %rdx, %rdi
        callq   *%rsi
        movq    %rbp, %rsp
        popq    %rbp
        .cfi_def_cfa rsp, 8
        .cfi_restore rbp
        retq
        .cfi_endproc
        .size   mnp_call_on_stack, .-mnp_call_on_stack

        .section .note.GNU-stack,"",%progbits
