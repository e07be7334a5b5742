/* main_return_deep — a main that returns to its caller from deep inside
 * the program, the way Free Pascal's start and exit code do: main keeps its
 * return address and %rbp in globals and calls the real program; the exit
 * routine, called from any depth, pushes the saved address and returns
 * with the exit status in %eax, leaving the stack pointer and the
 * callee-saved registers of that place. glibc's start code only calls
 * exit(%eax) after main, so natively this exits 3 with the output below;
 * the shim's main wrapper once restored its registers from the wrong stack
 * and crashed (every Free Pascal program using cthreads). */
#include <pthread.h>
#include <stdio.h>

#include "mnp_check.h"

int main(int argc, char** argv, char** envp);
int real_main(int argc, char** argv);
void leave_main(int status) __attribute__((noreturn));

unsigned long saved_ret, saved_rbp;

__asm__(
    ".text\n"
    ".globl main\n"
    ".type main, @function\n"
    "main:\n"
    "  movq (%rsp), %rax\n"
    "  movq %rax, saved_ret(%rip)\n"
    "  movq %rbp, saved_rbp(%rip)\n"
    "  subq $8, %rsp\n"
    "  call real_main\n"
    "  hlt\n"
    ".size main, .-main\n"
    ".globl leave_main\n"
    ".type leave_main, @function\n"
    "leave_main:\n"
    "  movl %edi, %eax\n"
    "  popq %rdx\n"
    "  movq saved_ret(%rip), %rdx\n"
    "  movq saved_rbp(%rip), %rbp\n"
    "  movq $0x5a5a5a5a, %rbx\n" /* callee-saved registers of no use to the caller */
    "  movq %rbx, %r12\n"
    "  movq %rbx, %r13\n"
    "  movq %rbx, %r14\n"
    "  movq %rbx, %r15\n"
    "  pushq %rdx\n"
    "  ret\n"
    ".size leave_main, .-leave_main\n");

static int token;
static void* worker(void* a) { return a; }

/* Some depth between main and the exit routine: frames that use the stack. */
static __attribute__((noinline)) void depth3(const volatile char* up) {
  volatile char pad[256];
  pad[0] = (char)(up[0] + 1);
  printf("leaving from depth %d\n", pad[0]);
  fflush(stdout);
  leave_main(3);
}
static __attribute__((noinline)) void depth2(const volatile char* up) {
  volatile char pad[256];
  pad[0] = (char)(up[0] + 1);
  depth3(pad);
}
static __attribute__((noinline)) void depth1(void) {
  volatile char pad[256];
  pad[0] = 1;
  depth2(pad);
}

int real_main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  mnp_report_shim();
  pthread_t t;
  void* r = NULL;
  pthread_create(&t, NULL, worker, &token);
  pthread_join(t, &r);
  printf("thread joined: %s\n", r == &token ? "yes" : "no");
  depth1();
  return 0;
}
