/* dlopen_tls_many — initial-exec TLS of libraries dlopen'ed while threads
 * exist, in the corners the simple case does not reach:
 *   reload:   a library closed and opened again starts from its initial
 *             image in every thread (glibc reuses its link map memory,
 *             module id and static TLS offset);
 *   past 256: a library opened after 300 others gets its image, and a later
 *             dlopen does not copy it over the values threads have set;
 *   dlmopen:  the same for a library in a new link-map namespace.
 * argv[1]: libmnp_tls_lib.so, argv[2]: libmnp_plain_lib.so (copied into a
 * temporary directory so that each copy is a module of its own). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnp_check.h"

#define N 4
#define PLAIN 300

enum { kIdle, kRead, kSet, kQuit };

static atomic_int phase_seq; /* bumped by main for every phase */
static atomic_int phase_kind;
static atomic_int acks;
static int (*volatile p_get)(void);
static void (*volatile p_set)(int);
static int seen[N];

static void* worker(void* arg) {
  long i = (long)arg;
  int done = 0;
  for (;;) {
    int seq;
    while ((seq = atomic_load(&phase_seq)) == done) usleep(100);
    done = seq;
    int kind = atomic_load(&phase_kind);
    if (kind == kQuit) return NULL;
    if (kind == kRead) seen[i] = p_get();
    if (kind == kSet) p_set(100 + (int)i);
    atomic_fetch_add(&acks, 1);
  }
}

static void phase(int kind) {
  atomic_store(&acks, 0);
  atomic_store(&phase_kind, kind);
  atomic_fetch_add(&phase_seq, 1);
  while (atomic_load(&acks) < N) usleep(100);
}

/* Every worker reads; prints how many saw `want`. */
static void check(const char* what, int want_initial) {
  phase(kRead);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += seen[i] == (want_initial ? 42 : 100 + i);
  printf("%s: %d/%d\n", what, ok, N);
}

static void* must_open(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    exit(1);
  }
  return h;
}

static void use(void* h) {
  p_get = (int (*)(void))dlsym(h, "get_value");
  p_set = (void (*)(int))dlsym(h, "set_value");
  if (!p_get || !p_set) {
    fprintf(stderr, "dlsym: %s\n", dlerror());
    exit(1);
  }
}

static void copy_file(const char* from, const char* to) {
  char buf[65536];
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0) {
    fprintf(stderr, "copy %s -> %s: %s\n", from, to, strerror(errno));
    exit(1);
  }
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) exit(1);
  close(in);
  close(out);
}

int main(int argc, char** argv) {
  mnp_report_shim();
  if (argc < 3) {
    fprintf(stderr, "usage: dlopen_tls_many TLSLIB PLAINLIB\n");
    return 2;
  }
  char dir[] = "/tmp/mnp-dltls-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[PLAIN + 2][64];
  for (int i = 0; i <= PLAIN; i++) {
    snprintf(path[i], sizeof path[i], "%s/p%03d.so", dir, i);
    copy_file(argv[2], path[i]);
  }
  char tls1[64], tls2[64];
  snprintf(tls1, sizeof tls1, "%s/t001.so", dir);
  snprintf(tls2, sizeof tls2, "%s/t002.so", dir);
  copy_file(argv[1], tls1);
  copy_file(argv[1], tls2);

  pthread_t t[N];
  for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void*)i);

  void* h = must_open(tls1);
  use(h);
  check("first open, initial", 1);
  phase(kSet);
  check("first open, own", 0);
  dlclose(h);
  h = must_open(tls1);
  use(h);
  check("reopened, initial", 1);
  dlclose(h);

  for (int i = 0; i < PLAIN; i++) must_open(path[i]);
  h = must_open(tls2);
  use(h);
  check("after 300 others, initial", 1);
  phase(kSet);
  must_open(path[PLAIN]);
  check("after 300 others, own kept over a later dlopen", 0);

  void* hm = dlmopen(LM_ID_NEWLM, tls1, RTLD_NOW);
  if (hm) {
    use(hm);
    check("new namespace, initial", 1);
    phase(kSet);
    must_open(path[0]);
    check("new namespace, own kept", 0);
  } else {
    printf("dlmopen: failed natively too (%s)\n", dlerror());
  }

  atomic_store(&phase_kind, kQuit);
  atomic_fetch_add(&phase_seq, 1);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  for (int i = 0; i <= PLAIN; i++) unlink(path[i]);
  unlink(tls1);
  unlink(tls2);
  rmdir(dir);
  return 0;
}
