/* exec_signal — no signal of the runtime's reaches a program across exec.
 *
 * Interleaving this reproduces: signals pending at a thread survive execve
 * and the new image has default actions. sysmon signals an M whose CPU
 * clock stands still (a fork child inside execve looks blocked) and Ms
 * running a G for long; one such signal landing during execve reached the
 * new program. With MNP_SIGNAL=12 (SIGUSR2, default action: terminate)
 * about 1 exec in 30 died of it, in the fork child (bash running /bin/true)
 * and in a process that execs itself while other threads run.
 *
 * The program re-execs itself once with MNP_SIGNAL=12 in its environment
 * (natively the variable means nothing), then:
 *   (a) 150 x fork + execl("/bin/true") + waitpid: every child exits 0;
 *   (b) a chain of 30 self-execs, each from a thread while another thread
 *       spins on the CPU: the chain reaches its end.
 * stdout: fixed lines. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int g_stop;
static char g_self[4096];

static void* spin(void* a) {
  (void)a;
  volatile unsigned long x = 0;
  while (!atomic_load(&g_stop)) x++;
  return NULL;
}

static void* exec_next(void* a) {
  char arg[16];
  snprintf(arg, sizeof arg, "%d", (int)(long)a);
  usleep(2000);
  execl(g_self, g_self, "chain", arg, (char*)NULL);
  printf("execl failed: %s\n", strerror(errno));
  exit(2);
}

static int chain(int left) {
  if (left == 0) {
    printf("chain of self-execs reached its end\n");
    return 0;
  }
  pthread_t s, e;
  pthread_create(&s, NULL, spin, NULL);
  pthread_create(&e, NULL, exec_next, (void*)(long)(left - 1));
  pthread_join(e, NULL); /* never returns: the exec replaces the process */
  return 3;
}

int main(int argc, char** argv) {
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  if (n <= 0) return 2;
  g_self[n] = 0;
  if (argc >= 3 && strcmp(argv[1], "chain") == 0) return chain(atoi(argv[2]));
  if (!getenv("MNP_SIGNAL")) {
    setenv("MNP_SIGNAL", "12", 1);
    execv(g_self, argv);
    return 2;
  }
  mnp_report_shim();
  alarm(60);
  int killed = 0, failed = 0;
  for (int i = 0; i < 150; i++) {
    pid_t p = fork();
    if (p == 0) {
      execl("/bin/true", "true", (char*)NULL);
      _exit(127);
    }
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(st)) {
      killed++;
      fprintf(stderr, "child %d killed by signal %d\n", i, WTERMSIG(st));
    } else if (WEXITSTATUS(st) != 0) {
      failed++;
    }
  }
  printf("fork+exec of /bin/true x150: killed by a signal %d, failed %d\n", killed, failed);
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    execl(g_self, g_self, "chain", "30", (char*)NULL);
    _exit(127);
  }
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st)) printf("self-exec chain killed by signal %d\n", WTERMSIG(st));
  else printf("self-exec chain exit %d\n", WEXITSTATUS(st));
  return killed || failed || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}
