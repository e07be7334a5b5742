// cancel_cpp — pthread_cancel unwinds C++ frames of a blocked thread.
//
// Cancellation is glibc's forced unwind (abi::__forced_unwind): destructors
// of live objects run, catch (...) and catch (abi::__forced_unwind&) blocks
// see it and must rethrow, and pthread_cleanup_push (the C++ class form)
// runs its handler in order with the objects around it. Each thread blocks
// in a different kind of wait (under the shim: condvar, timer, netpoller
// fd, hand-off) and logs into its own buffer; main prints the logs and
// whether each join saw PTHREAD_CANCELED.
//
//   raii      objects in three frames, blocked in sleep: ~c ~b ~a
//   catchall  catch (...) around read() logs and rethrows: ~in caught ~out
//   forced    catch (abi::__forced_unwind&) around pause(): same order
//   condvar   pthread_cleanup_push between two objects around a condvar
//             wait: ~b, handler (mutex held, unlock == 0), ~a
//
// Fails when a destructor or handler is skipped, runs twice or out of order,
// a catch block does not see the unwind, or std::terminate is called (a
// broken unwind through the runtime's frames).
#include <cxxabi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "mnp_check.h"

namespace {

constexpr int kThreads = 4;
std::string g_log[kThreads];
std::atomic<int> g_started{0};
pthread_mutex_t g_mu;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
int g_pipe[2];

void log_add(int id, const char* what) {
  if (!g_log[id].empty()) g_log[id] += ' ';
  g_log[id] += what;
}

struct Noisy {
  int id;
  const char* name;
  Noisy(int i, const char* n) : id(i), name(n) {}
  ~Noisy() { log_add(id, name); }
};

void raii_c(int id) {
  Noisy c(id, "~c");
  g_started++;
  sleep(60);
  log_add(id, "not-reached");
}
void raii_b(int id) {
  Noisy b(id, "~b");
  raii_c(id);
}
void* raii_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy a(id, "~a");
  raii_b(id);
  return nullptr;
}

void* catchall_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy out(id, "~out");
  try {
    Noisy in(id, "~in");
    char c;
    g_started++;
    if (read(g_pipe[0], &c, 1) >= 0) log_add(id, "not-reached");
  } catch (...) {
    log_add(id, "caught");
    throw;
  }
  return nullptr;
}

void* forced_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy out(id, "~out");
  try {
    Noisy in(id, "~in");
    g_started++;
    pause();
  } catch (abi::__forced_unwind&) {
    log_add(id, "caught-forced");
    throw;
  }
  return nullptr;
}

int g_condvar_id;
void unlock_handler(void* arg) {
  log_add(g_condvar_id,
          pthread_mutex_unlock(static_cast<pthread_mutex_t*>(arg)) == 0 ? "handler-unlocked" : "handler-not-held");
}
void* condvar_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  g_condvar_id = id;
  Noisy a(id, "~a");
  pthread_mutex_lock(&g_mu);
  pthread_cleanup_push(unlock_handler, &g_mu);
  Noisy b(id, "~b");
  g_started++;
  for (;;) pthread_cond_wait(&g_cv, &g_mu);
  pthread_cleanup_pop(0);
  return nullptr;
}

}  // namespace

int main() {
  mnp_report_shim();
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&g_mu, &ma);
  if (pipe(g_pipe) != 0) return 2;
  void* (*fns[kThreads])(void*) = {raii_main, catchall_main, forced_main, condvar_main};
  const char* names[kThreads] = {"raii", "catchall", "forced", "condvar"};
  for (int i = 0; i < kThreads; i++) {
    pthread_t t;
    int s0 = g_started.load();
    pthread_create(&t, nullptr, fns[i], reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    while (g_started.load() == s0) usleep(1000);
    usleep(50000);
    int rc = pthread_cancel(t);
    void* r = nullptr;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    int jr = pthread_timedjoin_np(t, &r, &dl);
    printf("%-9s cancel=%d join=%d canceled=%d log: %s\n", names[i], rc, jr, r == PTHREAD_CANCELED,
           jr == 0 ? g_log[i].c_str() : "-");
  }
  return 0;
}
