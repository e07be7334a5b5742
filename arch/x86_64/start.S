/* arch/x86_64/start.S — the call of the program's main (shim/init.cpp).
 *
 * mnp_call_main(main = rdi, argc = esi, argv = rdx, envp = rcx) calls
 * main(argc, argv, envp) and hands what it returns to mnp_main_returned,
 * which never returns (it calls exit). After main comes back nothing but
 * %eax is trusted: a program may leave main by a return of its own from
 * any depth, with the callee-saved registers and the stack pointer of
 * that place. Free Pascal's exit code does: it pushes main's saved return
 * address and returns from inside its own exit routine. glibc's start code
 * only calls exit(%eax) there, so such programs work natively; a C++
 * function there restored its registers from the wrong stack and crashed.
 * The stack pointer, if moved, is below this frame (the program's dead
 * frames), so the call from there overwrites nothing live.
 *
 * A preemption's stack walk of the main G ends here: [mnp_call_main,
 * mnp_call_main_end) counts as a base frame as mnp_gbase does
 * (core/preempt.cpp). It lives with the other start-up code, not in
 * mnp_gbase, whose page of the shim's text is then not touched unless a
 * second thread starts (docs/ARCHITECTURE.md, "Start-up").
 */
        .section .text.startup,"ax",@progbits
        .globl  mnp_call_main
        .hidden mnp_call_main
        .type   mnp_call_main, @function
        .p2align 4
mnp_call_main:
        .cfi_startproc
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        movq    %rdi, %rax
        movl    %esi, %edi
        movq    %rdx, %rsi
        movq    %rcx, %rdx
        callq   *%rax
        /* Past main's return %rbp may be the program's, not this frame's:
         * an unwind from exit's handlers ends here. */
        .cfi_undefined rip
        movl    %eax, %edi
        andq    $-16, %rsp
        callq   mnp_main_returned
        ud2
        .cfi_endproc
        .size   mnp_call_main, .-mnp_call_main
        .globl  mnp_call_main_end
        .hidden mnp_call_main_end
mnp_call_main_end:

        .section .note.GNU-stack,"",%progbits
