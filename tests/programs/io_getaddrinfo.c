/* io_getaddrinfo — 100 threads resolve "localhost" at the same time.
 *
 * Each thread calls getaddrinfo("localhost", "80", AF_INET, SOCK_STREAM) 10
 * times (released together by a barrier) and checks the first result is
 * 127.0.0.1 port 80.  No network: "localhost" comes from /etc/hosts, so this
 * exercises glibc's NSS machinery (dlopen of libnss_files, its locks, fopen
 * and reads of /etc/hosts) from many threads sharing few kernel threads.
 * stdout: the counts.
 *
 * Failure: fewer than 1000 successes or a wrong address (FAIL lines with
 * the gai_strerror text, exit 1), a crash in NSS, or a hang (runner
 * timeout). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mnp_check.h"

enum { kThreads = 100, kCalls = 10 };

static pthread_barrier_t g_start;
static atomic_int g_ok, g_failed, g_wrong;

static void* resolve(void* arg) {
  long id = (long)arg;
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < kCalls; i++) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    if (rc != 0 || res == NULL) {
      if (atomic_fetch_add(&g_failed, 1) < 5)
        fprintf(stderr, "FAIL thread %ld call %d: getaddrinfo: %s\n", id, i, gai_strerror(rc));
      continue;
    }
    const struct sockaddr_in* sin = (const struct sockaddr_in*)res->ai_addr;
    if (res->ai_family != AF_INET || sin->sin_addr.s_addr != htonl(INADDR_LOOPBACK) || ntohs(sin->sin_port) != 80) {
      if (atomic_fetch_add(&g_wrong, 1) < 5) {
        char buf[INET_ADDRSTRLEN] = "?";
        if (res->ai_family == AF_INET) inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
        fprintf(stderr, "FAIL thread %ld call %d: family %d address %s port %d\n", id, i, res->ai_family, buf,
                ntohs(sin->sin_port));
      }
    } else {
      atomic_fetch_add(&g_ok, 1);
    }
    freeaddrinfo(res);
  }
  return NULL;
}

int main(void) {
  mnp_report_shim();
  pthread_barrier_init(&g_start, NULL, kThreads);
  pthread_t t[kThreads];
  for (long i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], NULL, resolve, (void*)i) != 0) {
      fprintf(stderr, "FAIL pthread_create %ld\n", i);
      return 1;
    }
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&g_start);
  int ok = atomic_load(&g_ok);
  printf("getaddrinfo localhost: %d of %d resolved to 127.0.0.1:80, %d failed, %d wrong\n", ok, kThreads * kCalls,
         atomic_load(&g_failed), atomic_load(&g_wrong));
  return ok == kThreads * kCalls ? 0 : 1;
}
