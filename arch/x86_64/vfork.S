/* arch/x86_64/vfork.S — the shim's vfork (interpose/vfork.cpp).
 *
 * A vfork child runs on its parent's stack until it execs or exits, and
 * the parent then resumes from the instruction after the system call. So,
 * as in any vfork, nothing the parent needs afterwards may live in this
 * function's stack frame: the return address and the caller's G ride out
 * the call in registers (the kernel gives the parent back its own, and a
 * syscall keeps every register but rax, rcx and r11).
 *
 *   mnp_vfork_before()  -> rax: the caller's G, or null; the thread is
 *                          then no G, for the child's sake
 *   syscall vfork
 *   child:  return 0
 *   parent: return mnp_vfork_after(G, result)   (errno set on failure)
 */
        .text
        .globl  vfork
        .type   vfork, @function
        .p2align 4
vfork:
        .cfi_startproc
        endbr64
        subq    $8, %rsp                /* 16-byte alignment for the call */
        .cfi_adjust_cfa_offset 8
        call    mnp_vfork_before
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        movq    %rax, %r8               /* the G */
        popq    %rdi                    /* the return address */
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rdi
        movl    $58, %eax               /* SYS_vfork */
        syscall
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rip, 0
        testq   %rax, %rax
        jz      1f                      /* the child */
        movq    %r8, %rdi
        movq    %rax, %rsi
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        call    mnp_vfork_after
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
1:      ret
        .cfi_endproc
        .size   vfork, .-vfork

        .section .note.GNU-stack,"",%progbits
