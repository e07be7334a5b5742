// tests/unit/runtime_harness.h — running the scheduler itself inside a unit
// test: a fresh runtime per test, in a child process.
//
// EXPECT_IN_RUNTIME(procs, sysmon, body) runs body() as the main G of a
// runtime started at `procs` Ps on the child's initial thread, as the shim's
// start-up does (sched_init_main, then sysmon at once or never; the
// netpoller starts on first use), with Ms made by a plain pthread_create
// (nothing is interposed here: the unit tests link core/ directly). The child is a gtest death test in the
// "threadsafe" style, that is a re-executed test binary: every test gets a
// runtime of its own, with no state left by earlier tests. body() checks
// with RT_CHECK*; the first failure prints its line and ends the child with
// exit 1, which the parent reports together with the child's stderr. alarm()
// with the default action turns a hang into death by SIGALRM (a failure,
// never a wait for meson's timeout).
//
// Helpers for bodies: go() starts a G; Parker parks a G so that someone else
// can ready it; Counter lets the main G sleep (a sema-table park) until
// other Gs or threads count up to a number.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "core/base.h"
#include "core/netpoll.h"
#include "core/sched.h"
#include "core/sema.h"

namespace mnp_test {

constexpr int kChildAlarmSeconds = 20;

[[noreturn]] inline void rt_fail(const char* file, int line, const char* what, long long a, long long b) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "RT_CHECK failed at %s:%d: %s (%lld vs %lld)\n", file, line, what, a, b);
  if (n > 0) (void)!write(2, buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
  _exit(1);
}
#define RT_CHECK(c)                                              \
  do {                                                           \
    if (!(c)) ::mnp_test::rt_fail(__FILE__, __LINE__, #c, 0, 0); \
  } while (0)
#define RT_CHECK_OP(a, op, b)                                                                        \
  do {                                                                                               \
    long long rt_a_ = static_cast<long long>(a), rt_b_ = static_cast<long long>(b);                  \
    if (!(rt_a_ op rt_b_)) ::mnp_test::rt_fail(__FILE__, __LINE__, #a " " #op " " #b, rt_a_, rt_b_); \
  } while (0)
#define RT_CHECK_EQ(a, b) RT_CHECK_OP(a, ==, b)
#define RT_CHECK_GE(a, b) RT_CHECK_OP(a, >=, b)

// The M-creation hook, as interpose/thread.cpp's: a detached thread with a
// 256 KiB stack, born with every signal blocked.
inline int m_thread_create(void* (*fn)(void*), void* arg) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int r = pthread_create(&t, &a, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&a);
  return r;
}

[[noreturn]] inline void run_runtime(int procs, bool sysmon, void (*body)()) {
  alarm(kChildAlarmSeconds);
  char n[16];
  snprintf(n, sizeof n, "%d", procs);
  setenv("MNP_PROCS", n, 1);
  setenv("MNP_STACK", "256K", 1);
  setenv("MNP_PREEMPT", "0", 1);  // no libunwind, no asynchronous preemption
  unsetenv("MNP_DEBUG");
  mnp::set_os_thread_create(m_thread_create);
  if (!mnp::sched_init_main()) rt_fail(__FILE__, __LINE__, "sched_init_main", 0, 0);
  mnp::sysmon_init();
  // Without sysmon: marked started, so that no first park or newproc
  // starts it (core/sched.h, sysmon_ensure), and M0's scheduler stack made
  // as its start would make it.
  if (sysmon) {
    mnp::sysmon_ensure();
  } else {
    // What sysmon's thread does in the shim: glibc takes its locks (malloc's
    // arenas) only once a pthread_create has made it multi-threaded, and
    // Ms' threads are made without glibc (core/mthread.h).
    pthread_t t;
    if (pthread_create(
            &t, nullptr, [](void*) -> void* { return nullptr; }, nullptr) != 0 ||
        pthread_join(t, nullptr) != 0)
      rt_fail(__FILE__, __LINE__, "pthread_create", 0, 0);
    mnp::m0_g0_ensure();
    mnp::sysmon_up.store(true, std::memory_order_release);
  }
  body();
  _exit(0);
}

#define EXPECT_IN_RUNTIME(procs, sysmon, body)                                                                        \
  do {                                                                                                                \
    GTEST_FLAG_SET(death_test_style, "threadsafe");                                                                   \
    EXPECT_EXIT(::mnp_test::run_runtime(procs, sysmon, body), ::testing::ExitedWithCode(0), "") << "procs=" << procs; \
  } while (0)

// Starts fn(arg) on a new detached G (queued as the creator's next, as
// pthread_create does).
inline mnp::G* go(void (*fn)(void*), void* arg = nullptr) {
  struct Start {
    static void* entry(void* a) {
      auto* s = static_cast<Start*>(a);
      void (*f)(void*) = s->fn;
      void* x = s->arg;
      delete s;
      f(x);
      return nullptr;
    }
    void (*fn)(void*);
    void* arg;
  };
  mnp::GSpec spec{Start::entry, new Start{fn, arg}, 0, static_cast<size_t>(-1), nullptr, true};
  mnp::G* gp = nullptr;
  if (mnp::newproc(spec, &gp) != 0) rt_fail(__FILE__, __LINE__, "newproc", 0, 0);
  mnp::newproc_start(gp);
  return gp;
}

// One G parks here; whoever takes it out of the slot readies it. The G
// publishes itself before it parks, so a readier may find it still Running
// on its way into park (ready() waits for the park to commit).
struct Parker {
  std::atomic<mnp::G*> g{nullptr};
  void park_here() {
    g.store(mnp::getg(), std::memory_order_release);
    mnp::park(mnp::kWaitSema);
  }
  bool parked() const { return g.load(std::memory_order_acquire) != nullptr; }
  bool unpark(bool next = true) {
    mnp::G* gp = g.exchange(nullptr, std::memory_order_acq_rel);
    if (gp) mnp::ready(gp, next);
    return gp != nullptr;
  }
};

// Counts up (from Gs or plain threads); a G waits for a count by parking on
// the sema table.
struct Counter {
  std::atomic<uint32_t> n{0};
  void add() {
    n.fetch_add(1, std::memory_order_acq_rel);
    mnp::sema_wake(&n, 1 << 30);
  }
  void wait_for(uint32_t k) {
    for (;;) {
      uint32_t v = n.load(std::memory_order_acquire);
      if (v >= k) return;
      mnp::sema_wait(&n, v, mnp::kNever);
    }
  }
};

// The P and M the calling G runs on.
inline mnp::P* my_p() { return mnp::getg()->m->p; }
inline mnp::M* my_m() { return mnp::getg()->m; }

}  // namespace mnp_test
