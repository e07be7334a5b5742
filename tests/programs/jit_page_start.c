/* jit_page_start — two threads spin in generated code whose loop starts a
 * page that follows one that cannot be read, taking turns on the CPU.
 *
 * The shim's preemption signal lands in that code; its handler once read
 * the two bytes before the PC to see whether a system call had just
 * returned, and crashed on the page before (qemu's TCG code buffer: that
 * page was unmapped).
 * Stdout: the loops run, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mnp_check.h"

typedef void (*Spin)(long n);

static Spin spin;
static volatile int ticks;

static void* spinner(void* a) {
  (void)a;
  for (int i = 0; i < 40; i++) spin(20 * 1000 * 1000);
  return NULL;
}

static void* ticker(void* a) {
  (void)a;
  for (int i = 0; i < 20; i++) {
    usleep(5000);
    ticks++;
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(60);
  long page = sysconf(_SC_PAGESIZE);
  unsigned char* m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 1;
  /* The page before the code cannot be read (kept mapped, so that no later
   * mapping fills the hole). */
  if (mprotect(m, page, PROT_NONE) != 0) return 1;
  unsigned char* code = m + page;
  /* A loop whose branch target starts the page, entered at +2:
   *   +0: jz +8      +2: dec %rdi      +5: jmp +0      +8: ret */
  static const unsigned char body[] = {0x74, 0x06, 0x48, 0xff, 0xcf, 0xeb, 0xf9, 0x90, 0xc3};
  memcpy(code, body, sizeof body);
  if (mprotect(code, page, PROT_READ | PROT_EXEC) != 0) return 1;
  spin = (Spin)(code + 2);
  pthread_t s[2], t;
  for (int i = 0; i < 2; i++)
    if (pthread_create(&s[i], NULL, spinner, NULL) != 0) return 1;
  if (pthread_create(&t, NULL, ticker, NULL) != 0) return 1;
  for (int i = 0; i < 2; i++) pthread_join(s[i], NULL);
  pthread_join(t, NULL);
  printf("two threads spun 40 loops each; ticker ran %d times\n", ticks);
  return 0;
}
