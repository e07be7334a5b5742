/* tests/programs/cancel_async_nested.c — an asynchronous pthread_cancel
 * whose SIGCANCEL arrives together with another signal, which the runtime
 * handles in its own code first.
 *
 * Interleaving reproduced: the target, asynchronously cancelable, sits in a
 * vfork made with an inline `syscall` instruction (no wrapper sees it); the
 * kernel keeps the thread in a killable sleep until the child exits, 200 ms
 * later, and holds every signal sent meanwhile. main sends it SIGURG (the
 * runtime's signal under the shim, which sysmon also sends to an M it finds
 * asleep; ignored natively) and cancels it. When the vfork returns, the
 * kernel delivers the lower-numbered SIGURG first and SIGCANCEL on top of
 * it, at the first instruction of the runtime's handler: glibc's
 * sigfillset leaves SIGCANCEL out of that handler's mask. The SIGCANCEL
 * handler finds the runtime's code and cannot act there; the G must act
 * when the runtime's handler returns to its program code. The target then
 * spins for good, so a cancellation lost there is a join that times out
 * (it was, at 2 Ps, once sysmon no longer preempted a G for it).
 *
 * The same with SIGUSR1, for which the program has a handler: the shim's
 * trampoline runs it, and SIGCANCEL lands on the trampoline's first
 * instruction.
 *
 * Natively each round is cancelled as soon as the vfork returns. Output:
 * one line per round, the same natively and under the shim at 1 and 2 Ps. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kRounds = 3 };

static atomic_int in_vfork;
static atomic_int cleanups;
static const struct timespec child_sleep = {0, 200 * 1000 * 1000};

static atomic_int usr1_runs;

static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&usr1_runs, 1);
}

static void count_cleanup(void* arg) {
  (void)arg;
  atomic_fetch_add(&cleanups, 1);
}

/* vfork with the child sleeping child_sleep and exiting, all inside one
 * asm block: the child shares the parent's stack and touches none of it. */
static long raw_vfork_sleep(void) {
  long r;
  __asm__ volatile(
      "mov %[vfork], %%eax\n\t"
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "mov %[nanosleep], %%eax\n\t"
      "mov %[ts], %%rdi\n\t"
      "xor %%esi, %%esi\n\t"
      "syscall\n\t"
      "mov %[exit], %%eax\n\t"
      "xor %%edi, %%edi\n\t"
      "syscall\n\t"
      "1:\n\t"
      : "=&a"(r)
      : [vfork] "i"(SYS_vfork), [nanosleep] "i"(SYS_nanosleep), [exit] "i"(SYS_exit), [ts] "r"(&child_sleep)
      : "rcx", "r11", "rdi", "rsi", "memory");
  return r;
}

static void* target(void* arg) {
  (void)arg;
  pthread_cleanup_push(count_cleanup, NULL);
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
  atomic_store(&in_vfork, 1);
  raw_vfork_sleep();
  for (volatile unsigned long i = 0;; i++) {
  }
  pthread_cleanup_pop(0);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  signal(SIGUSR1, on_usr1);
  for (int round = 0; round < 2 * kRounds; round++) {
    int sig = round < kRounds ? SIGURG : SIGUSR1;
    int before = atomic_load(&cleanups);
    atomic_store(&in_vfork, 0);
    pthread_t t;
    pthread_create(&t, NULL, target, NULL);
    while (!atomic_load(&in_vfork)) usleep(1000);
    usleep(50 * 1000); /* inside the vfork by now (the child sleeps 200 ms) */
    int kr = pthread_kill(t, sig);
    int cr = pthread_cancel(t);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    void* res = NULL;
    int jr = pthread_timedjoin_np(t, &res, &dl);
    printf("round %d %s: kill=%d cancel=%d join=%s canceled=%d cleanup=%d\n", round,
           sig == SIGURG ? "SIGURG" : "SIGUSR1", kr, cr, jr ? strerror(jr) : "ok", res == PTHREAD_CANCELED,
           atomic_load(&cleanups) - before);
    fflush(stdout);
    if (jr) return 1; /* a spinning thread left behind: stop here */
  }
  mnp_check("kthreads_max", mnp_kernel_threads());
  return 0;
}
