/* malloc_cache — glibc malloc's cache shared per P stays one user at a time.
 *
 * Under the shim the Gs of a P share one glibc malloc cache
 * (docs/ARCHITECTURE.md, "Malloc caches"). Each part runs 6 churn threads
 * that malloc and free blocks of 16-1,016 bytes, each filled with a pattern
 * of its own and checked before it is freed (and that make a short pread,
 * a wrapped call, every 8 blocks), beside threads that leave their P in
 * the middle of a malloc in the ways the runtime must expect:
 *
 *   handler  a SIGALRM handler that parks (poll with a 1 ms timeout) runs on
 *            the churn threads (an interval timer of 100 us; main blocks
 *            the signal), so it often interrupts a malloc or free:
 *            natively harmless (the handler itself does not allocate);
 *   getline  4 readers call getline on pipes whose writers send each
 *            600-byte line in 6 pieces with sleeps between: getline blocks
 *            in read with its P handed on, then grows its buffer;
 *   resolve  4 threads call getaddrinfo("localhost") (NSS allocates; the
 *            call hands its P off at once, and the P starts without a
 *            cache), beside 2,000 short threads with a stack size of their
 *            own, whose memory (and what their malloc words hold) is freed
 *            as soon as they are joined.
 *
 * stdout: one line per part, "name: ok" (compared with the native run).
 * Failure: a block whose pattern changed or a wrong line or address
 * ("not ok" and details on stderr), or glibc's own abort on a corrupted
 * cache ("malloc(): unaligned tcache chunk detected" and the like). */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mnp_check.h"

enum { kChurners = 6, kSlots = 64, kReaders = 4, kLines = 40, kLineLen = 600, kPieces = 6, kResolvers = 4 };

static atomic_int g_stop;
static atomic_long g_bad;
static atomic_long g_handled;

static unsigned next_rand(unsigned* s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static unsigned char pattern(const void* p, size_t i) { return (unsigned char)(((uintptr_t)p >> 4) + i * 7); }

static int g_zero = -1; /* /dev/zero */
static char zero_byte;

static void* churn(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  unsigned char* slot[kSlots] = {0};
  size_t len[kSlots] = {0};
  for (unsigned n = 1; !atomic_load_explicit(&g_stop, memory_order_relaxed); n++) {
    /* Not a CPU hog: the other parts' threads get their turns soon after
     * their sleeps, not a time slice of each churner later. */
    if (n % 32 == 0) sched_yield();
    /* A short wrapped call: this churner's P is often marked as in a call
     * when a reader whose P was taken during its long read comes back for
     * that very P. */
    if (n % 8 == 0 && pread(g_zero, &zero_byte, 1, 0) != 1) atomic_fetch_add(&g_bad, 1);
    unsigned i = next_rand(&seed) % kSlots;
    if (slot[i]) {
      for (size_t k = 0; k < len[i]; k++)
        if (slot[i][k] != pattern(slot[i], k)) {
          if (atomic_fetch_add(&g_bad, 1) < 5) fprintf(stderr, "block %p byte %zu changed\n", (void*)slot[i], k);
          break;
        }
      free(slot[i]);
    }
    len[i] = 16 + next_rand(&seed) % 1001;
    slot[i] = malloc(len[i]);
    for (size_t k = 0; k < len[i]; k++) slot[i][k] = pattern(slot[i], k);
  }
  for (unsigned i = 0; i < kSlots; i++) free(slot[i]);
  return NULL;
}

static pthread_t g_churner[kChurners];

static void start_churn(void) {
  atomic_store(&g_stop, 0);
  for (long i = 0; i < kChurners; i++) pthread_create(&g_churner[i], NULL, churn, (void*)(i + 1));
}

static void stop_churn(void) {
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kChurners; i++) pthread_join(g_churner[i], NULL);
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

/* ---- handler ---- */
static void on_alarm(int sig) {
  (void)sig;
  poll(NULL, 0, 1);
  atomic_fetch_add(&g_handled, 1);
}

static int part_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  long bad0 = atomic_load(&g_bad);
  start_churn();
  /* Only the churners take it (they were made with it unblocked). */
  sigset_t alarm, old;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm, &old);
  struct itimerval every = {{0, 100}, {0, 100}}, off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &every, NULL);
  sleep_us(1000000);
  setitimer(ITIMER_REAL, &off, NULL);
  stop_churn();
  long handled = atomic_load(&g_handled);
  if (handled < 100) fprintf(stderr, "handler: only %ld handlers ran\n", handled);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return atomic_load(&g_bad) == bad0 && handled >= 100;
}

/* ---- getline ---- */
static int g_pipe[kReaders][2];
static atomic_int g_lines_ok;

static void* slow_writer(void* arg) {
  int fd = g_pipe[(long)arg][1];
  char line[kLineLen + 1];
  for (int l = 0; l < kLines; l++) {
    for (int k = 0; k < kLineLen; k++) line[k] = (char)('a' + (l + k) % 26);
    line[kLineLen] = '\n';
    int piece = (kLineLen + 1) / kPieces + 1;
    for (int off = 0; off < kLineLen + 1; off += piece) {
      int n = off + piece > kLineLen + 1 ? kLineLen + 1 - off : piece;
      if (write(fd, line + off, n) != n) return NULL;
      sleep_us(200);
    }
  }
  close(fd);
  return NULL;
}

static void* line_reader(void* arg) {
  FILE* f = fdopen(g_pipe[(long)arg][0], "r");
  char* buf = NULL;
  size_t cap = 0;
  int l = 0;
  ssize_t n;
  while ((n = getline(&buf, &cap, f)) > 0) {
    int ok = n == kLineLen + 1;
    for (int k = 0; ok && k < kLineLen; k++) ok = buf[k] == (char)('a' + (l + k) % 26);
    if (ok) atomic_fetch_add(&g_lines_ok, 1);
    else if (atomic_fetch_add(&g_bad, 1) < 5) fprintf(stderr, "getline: line %d of reader %ld wrong\n", l, (long)arg);
    /* A fresh buffer each time: getline allocates after its read. */
    free(buf);
    buf = NULL;
    cap = 0;
    l++;
  }
  free(buf);
  fclose(f);
  return NULL;
}

static int part_getline(void) {
  long bad0 = atomic_load(&g_bad);
  pthread_t w[kReaders], r[kReaders];
  start_churn();
  for (long i = 0; i < kReaders; i++) {
    if (pipe(g_pipe[i]) != 0) return 0;
    pthread_create(&w[i], NULL, slow_writer, (void*)i);
    pthread_create(&r[i], NULL, line_reader, (void*)i);
  }
  for (int i = 0; i < kReaders; i++) {
    pthread_join(w[i], NULL);
    pthread_join(r[i], NULL);
  }
  stop_churn();
  int lines = atomic_load(&g_lines_ok);
  if (lines != kReaders * kLines) fprintf(stderr, "getline: %d good lines of %d\n", lines, kReaders * kLines);
  return atomic_load(&g_bad) == bad0 && lines == kReaders * kLines;
}

/* ---- resolve ---- */
static atomic_int g_resolved;

static void* resolver(void* arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", "80", &hints, &res) == 0 && res) {
      const struct sockaddr_in* sin = (const struct sockaddr_in*)res->ai_addr;
      if (sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) atomic_fetch_add(&g_resolved, 1);
      freeaddrinfo(res);
    }
  }
  return NULL;
}

/* Short threads on stacks of a size of their own, whose memory is freed
 * at once when they are joined: what their words hold then must be no
 * P's cache. */
static void* short_one(void* arg) {
  char* p = malloc(64 + (uintptr_t)arg % 512);
  p[0] = 1;
  free(p);
  return NULL;
}

static atomic_int g_shorts_done;

static void* short_maker(void* arg) {
  (void)arg;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 192 * 1024);
  for (long i = 0; i < 2000; i++) {
    pthread_t t;
    if (pthread_create(&t, &a, short_one, (void*)i) == 0 && pthread_join(t, NULL) == 0)
      atomic_fetch_add(&g_shorts_done, 1);
  }
  pthread_attr_destroy(&a);
  return NULL;
}

static int part_resolve(void) {
  long bad0 = atomic_load(&g_bad);
  pthread_t t[kResolvers], maker;
  start_churn();
  pthread_create(&maker, NULL, short_maker, NULL);
  for (int i = 0; i < kResolvers; i++) pthread_create(&t[i], NULL, resolver, NULL);
  for (int i = 0; i < kResolvers; i++) pthread_join(t[i], NULL);
  pthread_join(maker, NULL);
  stop_churn();
  if (atomic_load(&g_shorts_done) != 2000) fprintf(stderr, "resolve: %d short threads of 2000\n", g_shorts_done);
  int n = atomic_load(&g_resolved);
  if (n != kResolvers * 200) fprintf(stderr, "resolve: %d of %d\n", n, kResolvers * 200);
  return atomic_load(&g_bad) == bad0 && n == kResolvers * 200 && atomic_load(&g_shorts_done) == 2000;
}

int main(void) {
  mnp_report_shim();
  g_zero = open("/dev/zero", O_RDONLY);
  mnp_report_case("handler", part_handler(), "");
  mnp_report_case("getline", part_getline(), "");
  mnp_report_case("resolve", part_resolve(), "");
  return 0;
}
