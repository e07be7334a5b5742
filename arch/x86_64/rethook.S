/* arch/x86_64/rethook.S — where a libc function returns when the poke
 * handler put this stub's address in place of its return address
 * (core/preempt.h, ret_hook_install; docs/ARCHITECTURE.md, "Time slice and
 * preemption").
 *
 *   mnp_ret_hook_stub: entered by that function's `ret`, with the stack
 *   pointer its caller had before the call (16-byte aligned) and its
 *   return value in rax/rdx (xmm0/xmm1 kept too). Takes the original
 *   return address from the G (mnp_ret_hook_take) into the word the
 *   return will pop, lets the G yield if its mark still stands
 *   (mnp_ret_hook_yield, which keeps errno), and returns there with
 *   those registers as they were. Until the word is filled no unwinder
 *   can step past this frame (rip undefined); from then on it is an
 *   ordinary frame whose return address is that word.
 */
        .text
        .globl  mnp_ret_hook_stub
        .hidden mnp_ret_hook_stub
        .type   mnp_ret_hook_stub, @function
        .p2align 4
        .cfi_startproc
        .cfi_def_cfa %rsp, 0
        .cfi_undefined rip
        /* An unwinder looks up the rule of a return address minus 1: this
         * byte puts that address inside this function's rules, not in the
         * end of whatever precedes it. */
        nop
mnp_ret_hook_stub:
        subq    $8, %rsp                /* the return address, below */
        .cfi_def_cfa_offset 8
        pushq   %rax
        .cfi_def_cfa_offset 16
        pushq   %rdx
        .cfi_def_cfa_offset 24
        subq    $40, %rsp
        .cfi_def_cfa_offset 64
        movdqu  %xmm0, (%rsp)
        movdqu  %xmm1, 16(%rsp)
        call    mnp_ret_hook_take
        movq    %rax, 56(%rsp)
        .cfi_offset rip, -8
        call    mnp_ret_hook_yield
        movdqu  (%rsp), %xmm0
        movdqu  16(%rsp), %xmm1
        addq    $40, %rsp
        .cfi_def_cfa_offset 24
        popq    %rdx
        .cfi_def_cfa_offset 16
        popq    %rax
        .cfi_def_cfa_offset 8
        ret
        .cfi_endproc
        .size   mnp_ret_hook_stub, .-mnp_ret_hook_stub

        .section .note.GNU-stack,"",%progbits
