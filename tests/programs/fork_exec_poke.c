/* fork_exec_poke.c — fork + exec while the runtime's sysmon signals other
 * threads.
 *
 * Interleaving this reproduces (bash under the shim, pyenv's shims: a
 * child spun for an hour before its execve): sysmon was in the middle of
 * sending its signal to a busy kernel thread (its "in flight" count up)
 * when another thread forked. The child inherited the count, with no
 * sysmon to bring it down, and exec, which waits until no signal of the
 * runtime's is in flight, waited for ever. Two CPU hogs keep a third thread
 * queued, so sysmon signals a hog's kernel thread every millisecond, while
 * main forks children that exec /bin/true. Stdout: the number of children
 * that exited 0. alarm(60) ends a hang (the runner's timeout too). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;

static void* hog(void* a) {
  (void)a;
  unsigned long x = 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) x = x * 6364136223846793005UL + 1;
  return (void*)x;
}

int main(int argc, char** argv) {
  mnp_report_shim();
  alarm(60);
  int n = argc > 1 ? atoi(argv[1]) : 150;
  pthread_t h[2];
  for (int i = 0; i < 2; i++) pthread_create(&h[i], NULL, hog, NULL);
  int ok = 0;
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) {
      execl("/bin/true", "true", (char*)NULL);
      _exit(127);
    }
    int st = 0;
    if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(h[i], NULL);
  printf("children that exited 0: %d of %d\n", ok, n);
  return ok == n ? 0 : 1;
}
