/* echo_server — a thread-per-connection TCP echo server on 127.0.0.1 and N
 * concurrent client threads (argv[1], default 2000), all connected at once
 * before any of them talks; each sends 10 messages and checks the echoes.
 * Under the shim every blocked read/accept must park its G on the netpoller:
 * with 2N+2 threads alive the kernel thread count (kthreads_max) stays at
 * MNP_PROCS + a few. A lost or corrupted echo prints "no" and exits 1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mnp_check.h"
static int NCLI = 2000;
#define MSGS 10
static int lfd;
static struct sockaddr_in addr;
static atomic_int connected, bad, kmax;
static int kth(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char l[256];
  int n = 0;
  while (fgets(l, 256, f))
    if (!strncmp(l, "Threads:", 8)) n = atoi(l + 8);
  fclose(f);
  return n;
}
static void* conn(void* a) {
  int fd = (int)(long)a;
  char b[256];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) {
    if (write(fd, b, n) != n) {
      atomic_fetch_add(&bad, 1);
      break;
    }
  }
  close(fd);
  return 0;
}
static void* acceptor(void* a) {
  (void)a;
  for (int i = 0; i < NCLI; i++) {
    int c = accept(lfd, 0, 0);
    if (c < 0) {
      perror("accept");
      exit(1);
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, 1);
    pthread_attr_setstacksize(&at, 64 * 1024);
    pthread_create(&t, &at, conn, (void*)(long)c);
  }
  return 0;
}
static void* client(void* a) {
  long id = (long)a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (void*)&addr, sizeof addr)) {
    perror("connect");
    exit(1);
  }
  atomic_fetch_add(&connected, 1);
  while (atomic_load(&connected) < NCLI) usleep(1000);
  if (id % 100 == 0) {
    int k = kth();
    int m = atomic_load(&kmax);
    while (k > m && !atomic_compare_exchange_weak(&kmax, &m, k))
      ;
  }
  for (int i = 0; i < MSGS; i++) {
    char m[64], r[64];
    snprintf(m, 64, "client %ld message %d", id, i);
    size_t len = strlen(m) + 1;
    if (write(fd, m, len) != (ssize_t)len) atomic_fetch_add(&bad, 1);
    size_t got = 0;
    while (got < len) {
      ssize_t n = read(fd, r + got, len - got);
      if (n <= 0) break;
      got += n;
    }
    if (got != len || memcmp(m, r, len)) atomic_fetch_add(&bad, 1);
  }
  close(fd);
  return 0;
}
int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc > 1) NCLI = atoi(argv[1]);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, (void*)&addr, sizeof addr);
  socklen_t l = sizeof addr;
  getsockname(lfd, (void*)&addr, &l);
  listen(lfd, 4096);
  pthread_t at;
  pthread_create(&at, 0, acceptor, 0);
  pthread_t* c = calloc(NCLI, sizeof *c);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 64 * 1024);
  for (long i = 0; i < NCLI; i++) pthread_create(&c[i], &a, client, (void*)i);
  for (int i = 0; i < NCLI; i++) pthread_join(c[i], 0);
  pthread_join(at, 0);
  printf("all echoes correct: %s\n", atomic_load(&bad) == 0 ? "yes" : "no");
  fprintf(stderr, "MNP-CHECK kthreads_max=%d\nMNP-CHECK clients=%d\n", atomic_load(&kmax), NCLI);
  return atomic_load(&bad) != 0;
}
