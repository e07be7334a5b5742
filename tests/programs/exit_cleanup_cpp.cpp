// exit_cleanup_cpp — pthread_exit unwinds C++ frames.
//
// glibc's pthread_exit raises a forced unwind (abi::__forced_unwind) that
// runs destructors of every live object, C++ cleanup handlers, and lets
// catch(...) / catch(abi::__forced_unwind&) blocks see it as long as they
// rethrow.  Then thread_local destructors and pthread key destructors run.
// Each thread logs into its own buffer; main prints the logs and the join
// values after all joins.
//
//   raii      objects in three nested frames: ~c ~b ~a, join 201.
//   forced    catch (abi::__forced_unwind&) logs and rethrows, objects inside
//             and outside the try are destroyed in order, join 202.
//   catchall  catch (...) logs and rethrows, join 203.
//   mixed     pthread_cleanup_push between two objects: ~b handler ~a, 204.
//   tls_key   thread_local destructor and pthread key destructor after the
//             unwinding: ~local, then thread_local, then key, join 205.
//   caught    an ordinary exception thrown and caught, then return, 206.
//
// Fails when destructors or handlers are skipped, run twice or out of order,
// a catch block does not see the forced unwind, the exit value is lost, the
// process terminates (std::terminate from a broken unwind), or it hangs.
// The exit status is 1 when a log or a join value differs from glibc's.
#include <cxxabi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdexcept>
#include <string>

#include "mnp_check.h"

namespace {

constexpr int kThreads = 6;
std::string g_log[kThreads];
pthread_key_t g_key;

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

// ---- raii ----
[[noreturn]] void raii_c(int id) {
  Noisy c(id, "~c");
  log_add(id, "exit");
  pthread_exit(reinterpret_cast<void*>(201));
}
void raii_b(int id) {
  Noisy b(id, "~b");
  raii_c(id);
}
void* raii_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy a(id, "~a");
  raii_b(id);
  log_add(id, "not-reached");
  return nullptr;
}

// ---- forced ----
void* forced_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy outer(id, "~outer");
  try {
    Noisy inner(id, "~inner");
    pthread_exit(reinterpret_cast<void*>(202));
  } catch (abi::__forced_unwind&) {
    log_add(id, "caught-forced-unwind");
    throw;
  }
  log_add(id, "not-reached");
  return nullptr;
}

// ---- catchall ----
void* catchall_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  try {
    Noisy inner(id, "~inner");
    pthread_exit(reinterpret_cast<void*>(203));
  } catch (...) {
    log_add(id, "catch-all");
    throw;
  }
  log_add(id, "not-reached");
  return nullptr;
}

// ---- mixed ----
void mixed_handler(void* p) { log_add(static_cast<int>(reinterpret_cast<intptr_t>(p)), "handler"); }
void* mixed_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Noisy a(id, "~a");
  pthread_cleanup_push(mixed_handler, arg);
  Noisy b(id, "~b");
  pthread_exit(reinterpret_cast<void*>(204));
  pthread_cleanup_pop(0);
  return nullptr;
}

// ---- tls_key ----
struct TlsNoisy {
  int id = -1;
  ~TlsNoisy() {
    if (id >= 0) log_add(id, "thread_local");
  }
};
thread_local TlsNoisy t_noisy;
void key_destructor(void* value) { log_add(static_cast<int>(reinterpret_cast<intptr_t>(value)) - 1, "key"); }
void* tls_key_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  t_noisy.id = id;
  pthread_setspecific(g_key, reinterpret_cast<void*>(static_cast<intptr_t>(id + 1)));
  Noisy local(id, "~local");
  pthread_exit(reinterpret_cast<void*>(205));
}

// ---- caught ----
void* caught_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  try {
    Noisy n(id, "~n");
    throw std::runtime_error("boom");
  } catch (const std::exception& e) {
    log_add(id, e.what());
  }
  log_add(id, "return");
  return reinterpret_cast<void*>(206);
}

}  // namespace

int main() {
  mnp_report_shim();
  if (pthread_key_create(&g_key, key_destructor) != 0) return 1;
  const char* const names[kThreads] = {"raii", "forced", "catchall", "mixed", "tls_key", "caught"};
  void* (*const fns[kThreads])(void*) = {raii_main, forced_main, catchall_main, mixed_main, tls_key_main, caught_main};
  // What glibc + libstdc++ do natively; the runner also compares against the native run.
  const char* const expect[kThreads] = {
      "exit ~c ~b ~a",           "~inner caught-forced-unwind ~outer",
      "~inner catch-all",        "~b handler ~a",
      "~local thread_local key", "~n boom return",
  };
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_create(&t[i], nullptr, fns[i], reinterpret_cast<void*>(static_cast<intptr_t>(i))) != 0) return 1;
  void* res[kThreads];
  for (int i = 0; i < kThreads; i++)
    if (pthread_join(t[i], &res[i]) != 0) return 1;
  bool ok = true;
  for (int i = 0; i < kThreads; i++) {
    long v = static_cast<long>(reinterpret_cast<intptr_t>(res[i]));
    printf("%s: log=[%s] join=%ld\n", names[i], g_log[i].c_str(), v);
    ok = ok && g_log[i] == expect[i] && v == 201 + i;
  }
  return ok ? 0 : 1;
}
