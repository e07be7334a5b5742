/* arch/x86_64/clone.S — the kernel thread of an M (core/mthread.cpp).
 *
 *   long mnp_clone_thread(flags = rdi, child_sp = rsi, ptid = rdx,
 *                         ctid = rcx, tls = r8)
 *
 * The clone system call takes its fourth argument in r10, not rcx. The
 * parent gets the new thread's id or -errno back. The child starts on
 * child_sp, which the caller made 16-byte aligned with a null word at
 * [child_sp], the entry function at [child_sp + 8] and its argument at
 * [child_sp + 16]; it calls entry(arg), which never returns. The child's
 * test and jump run under this function's unwind rule, whose return
 * address is then the null word, where an unwinder stops; from label 1 on
 * rip is undefined: the child's frame is the outermost of its stack.
 */
        .text
        .globl  mnp_clone_thread
        .hidden mnp_clone_thread
        .type   mnp_clone_thread, @function
        .p2align 4
mnp_clone_thread:
        .cfi_startproc
        movq    %rcx, %r10
        movl    $56, %eax               /* SYS_clone */
        syscall
        testq   %rax, %rax
        jz      1f
        ret
1:
        .cfi_undefined rip
        xorl    %ebp, %ebp
        popq    %rax                    /* the null word */
        popq    %rax                    /* entry */
        popq    %rdi                    /* its argument */
        andq    $-16, %rsp
        callq   *%rax
        ud2
        .cfi_endproc
        .size   mnp_clone_thread, .-mnp_clone_thread

        .section .note.GNU-stack,"",%progbits
