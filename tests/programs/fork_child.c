/* fork_child — fork() from a thread while other threads spin, then threads
 * in the child; and a fork+exec.  The child is single-threaded after fork
 * (only the forking thread survives) and must be able to create threads.
 * stdout: the child's lines, then the parent's (the parent waits). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnp_check.h"

static atomic_int stop;
static atomic_int spinning;

static void* spinner(void* arg) {
  (void)arg;
  atomic_fetch_add(&spinning, 1);
  while (!atomic_load(&stop)) sched_yield();
  return NULL;
}

static void* square(void* arg) {
  long i = (long)arg;
  return (void*)(i * i);
}

static void* nothing(void* arg) { return arg; }

static void child_body(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; i++)
    if (pthread_create(&t[i], NULL, square, (void*)i) != 0) {
      printf("child create failed\n");
      exit(3);
    }
  long sum = 0;
  for (int i = 0; i < 8; i++) {
    void* r;
    pthread_join(t[i], &r);
    sum += (long)r;
  }
  printf("child sum %ld\n", sum);
  long ok = 0;
  for (long i = 0; i < 1000; i++) {
    pthread_t th;
    void* r;
    if (pthread_create(&th, NULL, nothing, (void*)i) != 0) break;
    pthread_join(th, &r);
    if ((long)r == i) ok++;
  }
  printf("child sequential %ld\n", ok);
  printf("child ok\n");
  exit(0);
}

static void* forker(void* arg) {
  (void)arg;
  while (atomic_load(&spinning) < 4) sched_yield();
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return (void*)1;
  }
  if (pid == 0) child_body();
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) {
    perror("waitpid");
    return (void*)1;
  }
  if (WIFEXITED(st)) printf("child exit %d\n", WEXITSTATUS(st));
  else printf("child status %d\n", st);

  fflush(stdout);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return (void*)1;
  }
  if (pid == 0) {
    execl("/bin/echo", "echo", "exec ok", (char*)NULL);
    _exit(127);
  }
  if (waitpid(pid, &st, 0) != pid) {
    perror("waitpid");
    return (void*)1;
  }
  if (WIFEXITED(st)) printf("exec child exit %d\n", WEXITSTATUS(st));
  else printf("exec child status %d\n", st);
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_t spin[4], f;
  for (int i = 0; i < 4; i++) pthread_create(&spin[i], NULL, spinner, NULL);
  pthread_create(&f, NULL, forker, NULL);
  void* fr;
  pthread_join(f, &fr);
  atomic_store(&stop, 1);
  for (int i = 0; i < 4; i++) pthread_join(spin[i], NULL);
  printf("forker %ld\n", (long)fr);
  printf("parent ok\n");
  return 0;
}
