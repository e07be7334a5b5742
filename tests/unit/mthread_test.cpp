// tests/unit/mthread_test.cpp — an M's kernel thread made without glibc
// (core/mthread.h): its TCB's static TLS starts as the modules' images (a
// __thread initialiser of this program reads right), errno and the locale
// tables work, pthread_self is its TCB, glibc's __tls_get_addr finds a
// start-up module's block through the DTV the runtime built, the thread
// starts with every signal blocked, and its mapping is reused once it has
// ended.
#include <gtest/gtest.h>
#include <link.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <memory>

#include "arch/x86_64/context.h"
#include "core/mthread.h"
#include "core/sched.h"
#include "core/tcb.h"

using namespace mnp;

extern "C" void* __tls_get_addr(void*);

namespace {

__thread int tls_initialised = 42;

struct TlsIndex {
  unsigned long module, offset;
};

struct Probe {
  TlsIndex index{};             // tls_initialised, as a general-dynamic access names it
  int initial = 0;              // tls_initialised as the thread first read it
  void* through_dtv = nullptr;  // __tls_get_addr(&index) there
  void* own_addr = nullptr;     // &tls_initialised there
  void* self = nullptr;         // pthread_self() there
  uintptr_t fs = 0;
  int alpha = 0;
  int errno_seen = 0;
  uint64_t mask = 0;
  int tid = 0;
  int m_tid = 0;  // the M's tid as the thread found it
  std::atomic<int> done{0};
};
Probe g_probe;

void entry(void* arg) {
  M* mp = static_cast<M*>(arg);
  tcb_thread_start_on_current();
  Probe& p = g_probe;
  p.initial = tls_initialised;
  tls_initialised = 7;
  p.own_addr = &tls_initialised;
  p.through_dtv = __tls_get_addr(&p.index);
  p.self = reinterpret_cast<void*>(pthread_self());
  p.fs = arch_get_fs();
  p.alpha = isalpha('a') && !isalpha('1');
  errno = 0;
  if (close(-1) != 0) p.errno_seen = errno;
  raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&p.mask), 8);
  p.tid = raw_gettid();
  p.m_tid = mp->tid;
  p.done.store(1, std::memory_order_release);
  mthread_exit(mp);
}

int find_exe_block(struct dl_phdr_info* info, size_t, void* out) {
  // The first object is the executable (module 1 when it has TLS).
  if (info->dlpi_tls_modid == 1 && info->dlpi_tls_data) {
    *static_cast<char**>(out) = static_cast<char*>(info->dlpi_tls_data);
    return 1;
  }
  return 0;
}

bool thread_gone(int tid) { return syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH; }

}  // namespace

TEST(MThread, RunsOnATcbOfItsOwn) {
#if MNP_ASAN
  GTEST_SKIP() << "ASan builds make Ms with pthread_create";
#else
  ASSERT_TRUE(tcb_runtime_init());
  arch_init();
  char* block = nullptr;
  ASSERT_EQ(dl_iterate_phdr(find_exe_block, &block), 1);
  g_probe.index = {1, static_cast<unsigned long>(reinterpret_cast<char*>(&tls_initialised) - block)};
  tls_initialised = 5;  // this thread's copy; the new one starts from the image
  auto first = std::make_unique<M>();
  ASSERT_EQ(mthread_create(first.get(), entry), 0);
  for (int i = 0; i < 5000 && !g_probe.done.load(std::memory_order_acquire); i++) usleep(1000);
  ASSERT_EQ(g_probe.done.load(), 1);
  EXPECT_EQ(g_probe.initial, 42);
  EXPECT_EQ(tls_initialised, 5);
  EXPECT_NE(g_probe.own_addr, &tls_initialised);
  EXPECT_EQ(g_probe.through_dtv, g_probe.own_addr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(g_probe.self), g_probe.fs);
  EXPECT_EQ(g_probe.alpha, 1);
  EXPECT_EQ(g_probe.errno_seen, EBADF);
  EXPECT_EQ(g_probe.mask, ~uint64_t{0} & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))));
  EXPECT_EQ(g_probe.m_tid, g_probe.tid);  // set by the creator, before the thread runs
  EXPECT_TRUE(mthread_is_raw(first.get()));

  // The next thread gets the same mapping once the kernel is done with it.
  int old_tid = g_probe.tid;
  for (int i = 0; i < 5000 && !thread_gone(old_tid); i++) usleep(1000);
  ASSERT_TRUE(thread_gone(old_tid));
  EXPECT_EQ(first->tid, 0);
  uintptr_t old_fs = g_probe.fs;
  g_probe.done.store(0);
  auto second = std::make_unique<M>();
  ASSERT_EQ(mthread_create(second.get(), entry), 0);
  for (int i = 0; i < 5000 && !g_probe.done.load(std::memory_order_acquire); i++) usleep(1000);
  ASSERT_EQ(g_probe.done.load(), 1);
  EXPECT_EQ(g_probe.fs, old_fs);
  EXPECT_EQ(g_probe.initial, 42);  // the image again, not the 7 the first thread left
  EXPECT_EQ(g_probe.through_dtv, g_probe.own_addr);
  for (int i = 0; i < 5000 && !thread_gone(g_probe.tid); i++) usleep(1000);
#endif
}
