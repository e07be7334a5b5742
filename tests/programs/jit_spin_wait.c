/* jit_spin_wait — a thread waits for a flag in a loop of generated code
 * (no call, no unwind information), and the thread that sets the flag
 * needs a CPU: the main thread, after a sleep.
 *
 * No unwinder reads a JIT's frames, so the shim cannot tell whether its
 * preemption signal stopped the spinner at a safe point, and it never
 * switched it out: at 1 P the main thread never ran again (qemu's TCG vCPU
 * thread kept its P, and qemu hung at "Booting SMP configuration"). Now
 * the spinner runs on without its P, as the kernel's thread it is.
 * Stdout: the rounds done, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mnp_check.h"

typedef void (*WaitFor)(volatile int* flag);

static WaitFor wait_for;
static volatile int flag;

static void* spinner(void* a) {
  (void)a;
  wait_for(&flag);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  long page = sysconf(_SC_PAGESIZE);
  unsigned char* code = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) return 1;
  /* loop: cmpl $0, (%rdi); je loop; ret */
  static const unsigned char body[] = {0x83, 0x3f, 0x00, 0x74, 0xfb, 0xc3};
  memcpy(code, body, sizeof body);
  if (mprotect(code, page, PROT_READ | PROT_EXEC) != 0) return 1;
  wait_for = (WaitFor)code;
  enum { kRounds = 5 };
  for (int r = 0; r < kRounds; r++) {
    flag = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, spinner, NULL) != 0) return 1;
    usleep(30 * 1000);  // the spinner has the CPU (at 1 P, the only P) meanwhile
    flag = 1;
    pthread_join(t, NULL);
  }
  printf("%d rounds: each spinner saw its flag\n", kRounds);
  return 0;
}
