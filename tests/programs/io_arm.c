/* io_arm — fd waits the runtime parks on its netpoller (docs/ARCHITECTURE.md,
 * "Blocking calls"), in the shapes that a registration armed per wait must
 * get right (one tried on 2026-12-08 and rejected). Four idle threads stay
 * alive throughout, so that more threads live than Ps and the waits below
 * park on the netpoller rather than making the real call.
 *
 * 1. One socket, two directions: a reader blocks in read() while a writer
 *    blocks in a 4 MiB write() on the same socket (the peer reads nothing
 *    yet). A byte from the peer wakes the reader; the writer must still be
 *    woken once the peer drains the socket (an event for one direction
 *    must leave the fd armed for the other).
 * 2. A number reused behind the runtime's back: a pipe's read end, waited
 *    on once, is closed by fclose() (glibc closes it without the interposed
 *    close) while a dup keeps its file open; a new pipe takes the number,
 *    and a reader blocked on it must be woken by a write.
 * 3. Four threads in epoll_wait on one epoll fd holding a non-blocking
 *    pipe: each takes one of four bytes written one at a time (a wake-up
 *    that finds the byte taken waits again and must be woken again).
 * 4. Datagram sockets shut down for reading (UDP, and a unix datagram
 *    socketpair): a thread blocked in recv() is woken by shutdown(SHUT_RD)
 *    from main, the usual way to stop a receiving thread, and natively its
 *    recv returns 0 (a non-blocking recv says EAGAIN there, so the runtime
 *    used to wait for data that could not come); a recvfrom made after the
 *    shutdown returns 0 at once, with address length 0.
 * stdout: one line per part; a lost wake-up shows as the runner's timeout. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kIdle = 4, kBulk = 4 << 20, kEpollers = 4 };

static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_done;

static void die(const char* what) {
  perror(what);
  exit(2);
}

static void* idle(void* arg) {
  (void)arg;
  pthread_mutex_lock(&idle_mu);
  while (!idle_done) pthread_cond_wait(&idle_cv, &idle_mu);
  pthread_mutex_unlock(&idle_mu);
  return NULL;
}

static int sv[2];
static atomic_int read_got = -1;

static void* sock_reader(void* arg) {
  (void)arg;
  unsigned char c;
  if (read(sv[0], &c, 1) != 1) die("read");
  atomic_store(&read_got, c);
  return NULL;
}

static void* sock_writer(void* arg) {
  (void)arg;
  char* buf = malloc(kBulk);
  if (!buf) die("malloc");
  memset(buf, 'w', kBulk);
  ssize_t n = write(sv[0], buf, kBulk);
  free(buf);
  return (void*)(long)n;
}

static void two_directions(void) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
  pthread_t r, w;
  if (pthread_create(&r, NULL, sock_reader, NULL) != 0 || pthread_create(&w, NULL, sock_writer, NULL) != 0)
    die("pthread_create");
  usleep(100 * 1000);  // both blocked by now: the reader on data, the writer on room
  unsigned char c = 'x';
  if (write(sv[1], &c, 1) != 1) die("write");
  pthread_join(r, NULL);
  long drained = 0;
  char* buf = malloc(1 << 16);
  if (!buf) die("malloc");
  while (drained < kBulk) {
    ssize_t n = read(sv[1], buf, 1 << 16);
    if (n <= 0) die("drain");
    drained += n;
  }
  free(buf);
  void* wrote;
  pthread_join(w, &wrote);
  printf("two directions: reader got %c, writer wrote %ld, peer drained %ld\n", (char)atomic_load(&read_got),
         (long)wrote, drained);
  close(sv[0]);
  close(sv[1]);
}

static int reuse_fd;

static void* pipe_reader(void* arg) {
  (void)arg;
  char c;
  return (void*)(long)(read(reuse_fd, &c, 1) == 1 ? c : -1);
}

static char read_in_thread(int fd, int wfd, char c) {
  reuse_fd = fd;
  pthread_t t;
  if (pthread_create(&t, NULL, pipe_reader, NULL) != 0) die("pthread_create");
  usleep(50 * 1000);  // blocked by now
  if (write(wfd, &c, 1) != 1) die("write");
  void* got;
  pthread_join(t, &got);
  return (char)(long)got;
}

static void reused_number(void) {
  int a[2], b[2];
  if (pipe(a) != 0) die("pipe");
  char first = read_in_thread(a[0], a[1], '1');
  int keep = dup(a[0]);  // the old file stays open under another number
  if (keep < 0) die("dup");
  FILE* f = fdopen(a[0], "r");
  if (!f) die("fdopen");
  fclose(f);
  if (pipe(b) != 0) die("pipe");
  int same = b[0] == a[0];
  char second = read_in_thread(b[0], b[1], '2');
  printf("reused number: first read %c, number reused %s, second read %c\n", first, same ? "yes" : "no", second);
  close(keep);
  close(a[1]);
  close(b[0]);
  close(b[1]);
}

static int ep, ep_pipe[2];
static atomic_int taken;

static void* epoller(void* arg) {
  (void)arg;
  for (;;) {
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) die("epoll_wait");
    char c;
    ssize_t r = read(ep_pipe[0], &c, 1);
    if (r == 1) {
      atomic_fetch_add(&taken, 1);
      return NULL;
    }
    if (r < 0 && errno != EAGAIN) die("read");
  }
}

static void shared_epoll(void) {
  if (pipe2(ep_pipe, O_NONBLOCK) != 0) die("pipe2");
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ep_pipe[0]};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ep_pipe[0], &ev) != 0) die("epoll_ctl");
  pthread_t t[kEpollers];
  for (int i = 0; i < kEpollers; i++)
    if (pthread_create(&t[i], NULL, epoller, NULL) != 0) die("pthread_create");
  usleep(50 * 1000);
  for (int i = 0; i < kEpollers; i++) {
    if (write(ep_pipe[1], "e", 1) != 1) die("write");
    while (atomic_load(&taken) < i + 1) usleep(1000);
  }
  for (int i = 0; i < kEpollers; i++) pthread_join(t[i], NULL);
  printf("shared epoll: %d waiters took %d bytes\n", kEpollers, atomic_load(&taken));
  close(ep);
  close(ep_pipe[0]);
  close(ep_pipe[1]);
}

static int dgram_fd;

static void* dgram_reader(void* arg) {
  (void)arg;
  char b[16];
  return (void*)(long)recv(dgram_fd, b, sizeof b, 0);
}

static void shut_datagram(const char* what, int fd) {
  dgram_fd = fd;
  pthread_t t;
  if (pthread_create(&t, NULL, dgram_reader, NULL) != 0) die("pthread_create");
  usleep(50 * 1000);      // blocked by now
  shutdown(fd, SHUT_RD);  // an unconnected UDP socket says ENOTCONN, and still wakes the reader
  void* got;
  pthread_join(t, &got);
  char b[16];
  struct sockaddr_storage from;
  socklen_t len = sizeof from;
  ssize_t again = recvfrom(fd, b, sizeof b, 0, (struct sockaddr*)&from, &len);
  printf("%s shut for reading: blocked recv %ld, recvfrom after %zd, address length %u\n", what, (long)got, again,
         (unsigned)len);
}

static void shut_datagrams(void) {
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
  if (u < 0 || bind(u, (struct sockaddr*)&a, sizeof a) != 0) die("udp socket");
  shut_datagram("udp", u);
  close(u);
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) != 0) die("socketpair");
  shut_datagram("unix datagram", sp[0]);
  close(sp[0]);
  close(sp[1]);
}

int main(void) {
  mnp_report_shim();
  pthread_t idlers[kIdle];
  for (int i = 0; i < kIdle; i++)
    if (pthread_create(&idlers[i], NULL, idle, NULL) != 0) die("pthread_create");
  two_directions();
  reused_number();
  shared_epoll();
  shut_datagrams();
  pthread_mutex_lock(&idle_mu);
  idle_done = 1;
  pthread_cond_broadcast(&idle_cv);
  pthread_mutex_unlock(&idle_mu);
  for (int i = 0; i < kIdle; i++) pthread_join(idlers[i], NULL);
  return 0;
}
