/* wrapped_callout — program code that a blocking libc call runs, waiting.
 *
 * fgets on a fopencookie stream calls the program's read function from
 * inside glibc's stdio, which the shim treats as one blocking call (the
 * thread gives its P away for it). The read function here waits in every
 * way a thread can: a contended mutex and a condition variable, a pipe
 * read, a sleep and sched_yield. The shim once parked such a wait without
 * a P and crashed (Chromium's browser, a futex wait through syscall()).
 * Main feeds each line through the condition variable and the pipe while
 * the reader waits. Stdout: the lines read, as natively. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kLines = 20 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, served; /* ready: lines announced and not yet taken */
static int pipefd[2];

static ssize_t cookie_read(void* c, char* buf, size_t n) {
  (void)c;
  if (served == kLines) return 0;
  pthread_mutex_lock(&mu);
  while (!ready) pthread_cond_wait(&cv, &mu);
  ready--;
  pthread_mutex_unlock(&mu);
  char byte;
  if (read(pipefd[0], &byte, 1) != 1) return -1;
  sched_yield();
  usleep(200);
  return snprintf(buf, n, "line %d %c\n", served++, byte);
}

static void* reader(void* a) {
  cookie_io_functions_t io = {.read = cookie_read};
  FILE* f = fopencookie(NULL, "r", io);
  char line[64];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    fputs(line, stdout);
    n++;
  }
  fclose(f);
  *(int*)a = n;
  return NULL;
}

int main(void) {
  mnp_report_shim();
  alarm(30);
  if (pipe(pipefd) != 0) return 1;
  int n = 0;
  pthread_t t;
  pthread_create(&t, NULL, reader, &n);
  for (int i = 0; i < kLines; i++) {
    usleep(500);
    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    char byte = (char)('a' + i);
    usleep(200);
    if (write(pipefd[1], &byte, 1) != 1) return 1;
  }
  pthread_join(t, NULL);
  printf("lines read through the stream: %d\n", n);
  return 0;
}
