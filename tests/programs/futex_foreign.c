/* futex_foreign.c — a thread waiting in syscall(SYS_futex, FUTEX_WAIT) on a
 * private futex word is woken by a thread that pthread_create never made.
 *
 * Scenario: a pthread (a G under mnpthread) waits on a word with
 * FUTEX_WAIT_PRIVATE (and a second one with FUTEX_WAIT_BITSET_PRIVATE). A
 * kernel thread made with clone(CLONE_VM | CLONE_THREAD | ...) — no glibc
 * thread, no TLS of its own, only inline system calls — waits 50 ms, sets
 * the word and makes FUTEX_WAKE with its own `syscall` instruction, which
 * under mnpthread reaches the kernel and nobody else. The waiter must return
 * (a watchdog ends a hang after 5 s). How long the wake-up took goes to
 * stderr as wake_ms (the runtime bounds it by 16 ms plus scheduling). */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static volatile uint32_t g_word;
static volatile int g_waiting;
static volatile int g_child_done;
static struct timespec g_woke_at;

static long raw6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

/* Runs on the foreign thread: inline system calls only (it shares the
 * creator's TLS, so no errno, no libc). */
static int foreign(void* arg) {
  (void)arg;
  while (!g_waiting) raw6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
  struct timespec ts = {0, 50 * 1000 * 1000};
  raw6(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
  g_word = 1;
  raw6(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&g_woke_at, 0, 0, 0, 0);
  raw6(SYS_futex, (long)&g_word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
  g_child_done = 1;
  return 0;
}

struct waiter_arg {
  int bitset;
  long result;
  int err;
  struct timespec back;
};

static void* waiter(void* p) {
  struct waiter_arg* w = p;
  g_waiting = 1;
  do {
    if (w->bitset)
      w->result = syscall(SYS_futex, &g_word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, FUTEX_BITSET_MATCH_ANY);
    else w->result = syscall(SYS_futex, &g_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    w->err = w->result ? errno : 0;
  } while (g_word == 0); /* spurious wake-ups are allowed */
  clock_gettime(CLOCK_MONOTONIC, &w->back);
  return NULL;
}

static void round_of(const char* name, int bitset) {
  g_word = 0;
  g_waiting = 0;
  g_child_done = 0;
  struct waiter_arg w = {bitset, 0, 0, {0, 0}};
  pthread_t t;
  pthread_create(&t, NULL, waiter, &w);
  size_t sz = 64 * 1024;
  char* stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int tid = clone(foreign, stack + sz, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
                  NULL);
  if (tid < 0) {
    perror("clone");
    exit(1);
  }
  pthread_join(t, NULL);
  while (!g_child_done) usleep(1000);
  usleep(10000); /* let the foreign thread's exit finish before its stack goes */
  munmap(stack, sz);
  long long ms = ((w.back.tv_sec - g_woke_at.tv_sec) * 1000000000LL + (w.back.tv_nsec - g_woke_at.tv_nsec)) / 1000000;
  fprintf(stderr, "%s: woken %lld ms after the foreign wake\n", name, ms);
  mnp_check(bitset ? "wake_ms_bitset" : "wake_ms", ms);
  printf("%s: waiter woken by a foreign thread: yes (word %u)\n", name, (unsigned)g_word);
}

int main(void) {
  mnp_report_shim();
  alarm(5); /* a lost wake-up hangs: the default action ends it */
  round_of("FUTEX_WAIT_PRIVATE", 0);
  round_of("FUTEX_WAIT_BITSET_PRIVATE", 1);
  return 0;
}
