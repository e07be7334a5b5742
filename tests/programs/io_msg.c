/* io_msg — recvmsg, sendmsg, recvmmsg and sendmmsg on blocking sockets,
 * with the receiving thread blocked before the data is sent.
 *
 *   (a) recvmsg on a stream socketpair waits for a two-part sendmsg that
 *       also passes a pipe's write end (SCM_RIGHTS); the received fd works;
 *   (b) recvmmsg (vlen 4, no flags, no timeout) on a datagram socketpair
 *       returns only once all 4 datagrams, sent 5 ms apart, have arrived;
 *   (c) recvmmsg with MSG_WAITFORONE returns 1 to 3 of 3 datagrams sent by
 *       one sendmmsg, and the rest come with the next calls, in order;
 *   (e) recvmsg and recvmmsg with MSG_ERRQUEUE on a blocking UDP socket
 *       with an empty error queue fail with EAGAIN at once, as natively;
 *   (d) sendmmsg of 3 messages of 256 KiB on a stream socketpair (more
 *       than the socket buffer) to a reader that drains slowly returns 3,
 *       and the reader gets every byte in order.
 * stdout: one "name: ok" line per check; on failure "name: not ok" and a
 * FAIL line on stderr, exit 1. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

static int g_failures;

static void report(const char* name, int ok, const char* detail) {
  printf("%s: %s\n", name, ok ? "ok" : "not ok");
  if (!ok) {
    fprintf(stderr, "FAIL %s: %s (errno %s)\n", name, detail, strerror(errno));
    g_failures++;
  }
}

static void sleep_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- (a) recvmsg with SCM_RIGHTS ---- */
static int g_pair_a[2];
static int g_a_ok;

static void* recvmsg_thread(void* arg) {
  (void)arg;
  char a[5], b[7];
  struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n = recvmsg(g_pair_a[1], &m, MSG_WAITALL);
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  int fd = -1;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  g_a_ok = n == 12 && memcmp(a, "hello", 5) == 0 && memcmp(b, ", world", 7) == 0 && fd >= 0 && write(fd, "x", 1) == 1;
  if (!g_a_ok) fprintf(stderr, "FAIL recvmsg returned %zd (errno %s), fd %d\n", n, strerror(errno), fd);
  if (fd >= 0) close(fd);
  return NULL;
}

static void check_recvmsg(void) {
  int p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, g_pair_a) != 0 || pipe(p) != 0) {
    report("recvmsg scm_rights", 0, "socketpair/pipe");
    return;
  }
  pthread_t t;
  pthread_create(&t, NULL, recvmsg_thread, NULL);
  sleep_ms(20);
  struct iovec iov[2] = {{"hello", 5}, {", world", 7}};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  ssize_t n = sendmsg(g_pair_a[0], &m, 0);
  pthread_join(t, NULL);
  char x = 0;
  int got = g_a_ok && read(p[0], &x, 1) == 1 && x == 'x';
  report("recvmsg scm_rights", n == 12 && g_a_ok && got, "sendmsg/recvmsg result");
  close(p[0]);
  close(p[1]);
  close(g_pair_a[0]);
  close(g_pair_a[1]);
}

/* ---- (b) and (c) recvmmsg ---- */
enum { kDgrams = 4 };
static int g_pair_b[2];

static void* dgram_sender(void* arg) {
  (void)arg;
  for (int i = 0; i < kDgrams; i++) {
    sleep_ms(5);
    char msg[16];
    snprintf(msg, sizeof msg, "dgram %d", i);
    if (send(g_pair_b[0], msg, strlen(msg) + 1, 0) < 0) perror("send");
  }
  return NULL;
}

static void check_recvmmsg(void) {
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, g_pair_b) != 0) {
    report("recvmmsg all", 0, "socketpair");
    return;
  }
  char buf[kDgrams][16];
  struct iovec iov[kDgrams];
  struct mmsghdr v[kDgrams];
  memset(v, 0, sizeof v);
  for (int i = 0; i < kDgrams; i++) {
    iov[i] = (struct iovec){buf[i], sizeof buf[i]};
    v[i].msg_hdr.msg_iov = &iov[i];
    v[i].msg_hdr.msg_iovlen = 1;
  }
  pthread_t t;
  pthread_create(&t, NULL, dgram_sender, NULL);
  int n = recvmmsg(g_pair_b[1], v, kDgrams, 0, NULL);
  pthread_join(t, NULL);
  int ok = n == kDgrams;
  for (int i = 0; ok && i < kDgrams; i++) {
    char want[16];
    snprintf(want, sizeof want, "dgram %d", i);
    ok = v[i].msg_len == strlen(want) + 1 && strcmp(buf[i], want) == 0;
  }
  report("recvmmsg all", ok, "recvmmsg did not return the 4 datagrams in order");

  /* (c) MSG_WAITFORONE, 3 datagrams from one sendmmsg. */
  char out[3][8] = {"one", "two", "three"};
  struct iovec oiov[3];
  struct mmsghdr ov[3];
  memset(ov, 0, sizeof ov);
  for (int i = 0; i < 3; i++) {
    oiov[i] = (struct iovec){out[i], strlen(out[i]) + 1};
    ov[i].msg_hdr.msg_iov = &oiov[i];
    ov[i].msg_hdr.msg_iovlen = 1;
  }
  int sent = sendmmsg(g_pair_b[0], ov, 3, 0);
  int got = 0, calls_ok = 1;
  while (got < 3 && calls_ok) {
    memset(v, 0, sizeof v);
    for (int i = 0; i < 3; i++) {
      v[i].msg_hdr.msg_iov = &iov[i];
      v[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(g_pair_b[1], v, 3 - got, MSG_WAITFORONE, NULL);
    if (r < 1) {
      calls_ok = 0;
      break;
    }
    for (int i = 0; i < r; i++)
      if (strcmp(buf[i], out[got + i]) != 0) calls_ok = 0;
    got += r;
  }
  report("recvmmsg waitforone", sent == 3 && calls_ok && got == 3, "sendmmsg/recvmmsg WAITFORONE");
  close(g_pair_b[0]);
  close(g_pair_b[1]);
}

/* ---- (d) sendmmsg of more than the socket buffer ---- */
enum { kBig = 256 * 1024, kBigMsgs = 3 };
static int g_pair_d[2];
static long g_d_bytes, g_d_bad;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 4099); }

static void* slow_reader(void* arg) {
  (void)arg;
  static unsigned char buf[16384];
  size_t pos = 0;
  for (;;) {
    sleep_ms(1);
    ssize_t n = read(g_pair_d[1], buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++, pos++)
      if (buf[i] != pattern(pos)) g_d_bad++;
  }
  g_d_bytes = (long)pos;
  return NULL;
}

static void check_sendmmsg(void) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, g_pair_d) != 0) {
    report("sendmmsg stream", 0, "socketpair");
    return;
  }
  unsigned char* data = malloc((size_t)kBig * kBigMsgs);
  for (size_t i = 0; i < (size_t)kBig * kBigMsgs; i++) data[i] = pattern(i);
  struct iovec iov[kBigMsgs];
  struct mmsghdr v[kBigMsgs];
  memset(v, 0, sizeof v);
  for (int i = 0; i < kBigMsgs; i++) {
    iov[i] = (struct iovec){data + (size_t)i * kBig, kBig};
    v[i].msg_hdr.msg_iov = &iov[i];
    v[i].msg_hdr.msg_iovlen = 1;
  }
  pthread_t t;
  pthread_create(&t, NULL, slow_reader, NULL);
  int n = sendmmsg(g_pair_d[0], v, kBigMsgs, 0);
  int lens_ok = 1;
  for (int i = 0; i < kBigMsgs; i++)
    if (v[i].msg_len != kBig) lens_ok = 0;
  shutdown(g_pair_d[0], SHUT_WR);
  pthread_join(t, NULL);
  report("sendmmsg stream", n == kBigMsgs && lens_ok && g_d_bytes == (long)kBig * kBigMsgs && g_d_bad == 0,
         "sendmmsg result or bytes received");
  free(data);
  close(g_pair_d[0]);
  close(g_pair_d[1]);
}

/* ---- (e) MSG_ERRQUEUE never blocks ---- */
static void check_errqueue(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) {
    report("errqueue", 0, "socket");
    return;
  }
  char buf[64];
  struct iovec iov = {buf, sizeof buf};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  errno = 0;
  ssize_t n = recvmsg(s, &m, MSG_ERRQUEUE);
  int e1 = errno;
  struct mmsghdr v = {.msg_hdr = m};
  errno = 0;
  int k = recvmmsg(s, &v, 1, MSG_ERRQUEUE, NULL);
  int e2 = errno;
  report("errqueue", n == -1 && e1 == EAGAIN && k == -1 && e2 == EAGAIN, "recvmsg/recvmmsg MSG_ERRQUEUE");
  close(s);
}

int main(void) {
  mnp_report_shim();
  check_errqueue();
  check_recvmsg();
  check_recvmmsg();
  check_sendmmsg();
  return g_failures ? 1 : 0;
}
