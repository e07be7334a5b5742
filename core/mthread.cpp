// core/mthread.cpp — the kernel threads of Ms. See mthread.h for the why.
#include "core/mthread.h"

#include <errno.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "arch/x86_64/context.h"
#include "core/base.h"
#include "core/futex.h"
#include "core/sched.h"
#include "core/tcb.h"

extern "C" long mnp_clone_thread(unsigned long flags, void* child_sp, int* ptid, int* ctid, void* tls);

namespace mnp {

// One mapping per thread: a guard page, the stack, the static TLS and the
// TCB, the DTV, and this record at the top.
struct MThread {
  MThread* next = nullptr;  // on the list of ended threads' mappings
  char* base = nullptr;     // of the mapping
  size_t size = 0;
  void* tcb = nullptr;
  uintptr_t* dtv = nullptr;
};

namespace {

constexpr size_t kGuard = 4096;
constexpr size_t kStack = 256 * 1024;  // as the runtime's other threads
// Slots in an M's DTV beyond the highest start-up module id: glibc would
// realloc a DTV too small for a later module's id, but it looks only when
// code on the TCB reaches that module's TLS through __tls_get_addr, which
// the runtime's own code never does.
constexpr size_t kDtvSpare = 256;
// Exactly glibc's pthread_create flags, the kernel writing the new
// thread's id into its TCB (CLONE_PARENT_SETTID) before the thread runs:
// a sandbox's seccomp filter allows clone with those flags only
// (Chromium's killed every renderer and utility process, SIGSYS for the
// extra CLONE_CHILD_SETTID, until 2026-12-07).
constexpr unsigned long kCloneFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_SIGHAND | CLONE_THREAD |
                                      CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

// The static TLS block below a TCB as glibc sets it up for a new thread
// (each start-up module's initial image at its offset, zeros elsewhere)
// and the modules' DTV slots: filled once, then g_tls_ready.
constinit TlsTemplate g_tls{};
constinit std::atomic<bool> g_tls_ready{false};

// dl_iterate_phdr callback: a module's block in this thread tells its
// offset below the TCB (tp); modules outside the static block are left to
// the DTV's lazy path.
int capture_module(struct dl_phdr_info* info, size_t, void* tp) {
  if (info->dlpi_tls_modid == 0) return 0;
  g_tls.dtv_slots = std::max(g_tls.dtv_slots, info->dlpi_tls_modid + kDtvSpare);
  if (!info->dlpi_tls_data) return 0;
  size_t below = tls_layout().static_size - tcbo::kSize;
  auto off = static_cast<size_t>(static_cast<char*>(tp) - static_cast<char*>(info->dlpi_tls_data));
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_TLS) continue;
    if (off == 0 || off > below || ph.p_memsz > off) break;
    memcpy(g_tls.image + below - off, reinterpret_cast<const void*>(info->dlpi_addr + ph.p_vaddr), ph.p_filesz);
    if (g_tls.nmodules < TlsTemplate::kMaxModules) g_tls.modules[g_tls.nmodules++] = {info->dlpi_tls_modid, off};
    break;
  }
  return 0;
}

size_t dtv_bytes() { return 2 * (g_tls.dtv_slots + 2) * sizeof(uintptr_t); }

constinit Lock g_dead_lock;
constinit MThread* g_dead = nullptr;  // mappings of ended threads (g_dead_lock)

// Held while an M's thread is made or ends, and through a credential change.
constinit Lock g_xid_lock;
struct XidRequest {
  long nr = 0, a = 0, b = 0, c = 0;
  std::atomic<uint32_t> left{0};  // threads yet to answer
  std::atomic<bool> failed{false};
};
constinit XidRequest g_xid;

int& kernel_tid(MThread* t) { return tcb_field<int>(t->tcb, tcbo::kTid); }

uintptr_t align_down(uintptr_t v, size_t a) { return v & ~(uintptr_t{a} - 1); }

MThread* mapping_get() {
  {
    LockGuard lk(g_dead_lock);
    for (MThread** pp = &g_dead; *pp; pp = &(*pp)->next) {
      MThread* t = *pp;
      if (__atomic_load_n(&kernel_tid(t), __ATOMIC_ACQUIRE) == 0) {
        *pp = t->next;
        return t;
      }
    }
  }
  const TlsLayout& tl = tls_layout();
  size_t size = kGuard + kStack + tl.static_size + tl.static_align + dtv_bytes() + sizeof(MThread) + 64;
  size = (size + 4095) & ~size_t{4095};
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(size), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (r < 0 && r > -4096) return nullptr;
  char* base = reinterpret_cast<char*>(r);
  raw_syscall(SYS_mprotect, r, kGuard, PROT_NONE);
  uintptr_t top = reinterpret_cast<uintptr_t>(base) + size;
  auto* t = new (reinterpret_cast<void*>(align_down(top - sizeof(MThread), 64))) MThread();
  t->base = base;
  t->size = size;
  t->dtv = reinterpret_cast<uintptr_t*>(align_down(reinterpret_cast<uintptr_t>(t) - dtv_bytes(), 16));
  t->tcb = reinterpret_cast<void*>(align_down(reinterpret_cast<uintptr_t>(t->dtv) - tcbo::kSize, tl.static_align));
  return t;
}

void mapping_put(MThread* t) {
  LockGuard lk(g_dead_lock);
  t->next = g_dead;
  g_dead = t;
}

// Every signal, glibc's 32 and 33 included (its sigfillset leaves them out);
// the mask before in *old unless null.
void block_all(sigset_t* old = nullptr) {
  uint64_t all = ~uint64_t{0};
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), reinterpret_cast<long>(old), 8);
}

}  // namespace

void mthread_prepare() {
  if (g_tls_ready.load(std::memory_order_acquire)) return;
  long r = raw_syscall6(SYS_mmap, 0, static_cast<long>(tls_layout().static_size - tcbo::kSize), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) fatal("cannot allocate the TLS image for Ms");
  g_tls.image = reinterpret_cast<char*>(r);
  g_tls.dtv_slots = kDtvSpare;
  dl_iterate_phdr(capture_module, reinterpret_cast<void*>(arch_get_fs()));
  g_tls_ready.store(true, std::memory_order_release);
}

int mthread_create(M* mp, void (*entry)(void*)) {
  // glibc skips its locks (malloc's arenas, stdio) while it believes the
  // process has one thread, and only its pthread_create tells it otherwise:
  // sysmon's thread does, before any M's (sysmon_ensure_slow).
  if (__libc_single_threaded) fatal("an M's thread made while glibc believes the process single-threaded");
  mthread_prepare();
  MThread* t = mapping_get();
  if (!t) return -ENOMEM;
  char* tls_lo = static_cast<char*>(t->tcb) - (tls_layout().static_size - tcbo::kSize);
  char* stack_lo = t->base + kGuard;
  tcb_init_standalone(t->tcb, g_tls, t->dtv, stack_lo, static_cast<size_t>(tls_lo - stack_lo), kGuard);
  // What the child pops (clone.S): a null return address, where an unwinder
  // stopped before the child's first call ends; the entry; its argument.
  auto sp = align_down(reinterpret_cast<uintptr_t>(tls_lo), 16) - 32;
  reinterpret_cast<void**>(sp)[0] = nullptr;
  reinterpret_cast<void**>(sp)[1] = reinterpret_cast<void*>(entry);
  reinterpret_cast<void**>(sp)[2] = mp;
  mp->kthread = t;
  // Born with every signal blocked, glibc's 32 and 33 included: the kernel
  // cannot pick it for a signal of the program's before it is an M, nor
  // can a set*id broadcast reach it before mstart sets its mask. M::tid
  // is written before the lock is dropped, for the broadcast's m_by_tid
  // (and by the thread itself in mstart, whichever comes first).
  g_xid_lock.lock();
  sigset_t old;
  block_all(&old);
  long r = mnp_clone_thread(kCloneFlags, reinterpret_cast<void*>(sp), &kernel_tid(t), &kernel_tid(t), t->tcb);
  if (r > 0) {
    __atomic_store_n(&mp->tid, static_cast<int>(r), __ATOMIC_RELAXED);
    mp->xid_live = true;
  }
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, 8);
  g_xid_lock.unlock();
  if (r < 0) {
    mp->kthread = nullptr;
    kernel_tid(t) = 0;
    mapping_put(t);
    return static_cast<int>(r);
  }
  return 0;
}

[[noreturn]] void mthread_exit(M* mp) {
  MThread* t = mp->kthread;
  g_xid_lock.lock();
  mp->xid_live = false;
  g_xid_lock.unlock();
  block_all();
  mp->tid = 0;  // m_by_tid must not find it; a new thread may reuse the id
  // Reused once the kernel has cleared the TCB's tid, when this thread no
  // longer touches its stack.
  mapping_put(t);
  for (;;) raw_syscall(SYS_exit, 0);
}

bool mthread_is_raw(const M* mp) { return mp->kthread != nullptr; }

void mthread_xid_lock() { g_xid_lock.lock(); }
void mthread_xid_unlock() { g_xid_lock.unlock(); }

bool mthread_xid_broadcast(long nr, long a, long b, long c) {
  g_xid.nr = nr;
  g_xid.a = a;
  g_xid.b = b;
  g_xid.c = c;
  g_xid.failed.store(false, std::memory_order_relaxed);
  int self = raw_gettid();
  long pid = raw_syscall(SYS_getpid);
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink) {
    if (!mp->kthread || !mp->xid_live) continue;
    int tid = mp->tid;
    if (tid == self || tid == 0) continue;
    g_xid.left.fetch_add(1, std::memory_order_seq_cst);
    mp->xid_pending.store(true, std::memory_order_seq_cst);
    // A live M cannot end while the lock is held: it answers.
    if (raw_syscall(SYS_tgkill, pid, tid, kSigSetxid) != 0 && mp->xid_pending.exchange(false))
      g_xid.left.fetch_sub(1, std::memory_order_seq_cst);
  }
  for (uint32_t v; (v = g_xid.left.load(std::memory_order_acquire)) != 0;) futex_wait(&g_xid.left, v);
  return !g_xid.failed.load(std::memory_order_relaxed);
}

bool mthread_xid_serve() {
  M* mp = m_by_tid(raw_gettid());
  if (!mp || !mp->kthread || !mp->xid_pending.exchange(false, std::memory_order_seq_cst)) return false;
  long r = raw_syscall(g_xid.nr, g_xid.a, g_xid.b, g_xid.c);
  if (r != 0) g_xid.failed.store(true, std::memory_order_relaxed);
  if (g_xid.left.fetch_sub(1, std::memory_order_acq_rel) == 1) futex_wake(&g_xid.left, 1);
  return true;
}

MNP_STARTUP void mthread_after_fork_child(M* survivor) {
  g_dead_lock.reset_in_child();
  g_xid_lock.reset_in_child();
  g_xid.left.store(0, std::memory_order_relaxed);
  // A broadcast of the parent's may have flagged the forking thread.
  survivor->xid_pending.store(false, std::memory_order_relaxed);
  // The forking thread goes on in the child under a new id. glibc's fork
  // pointed the kernel's clear-at-exit word at the forking G's TCB, which
  // another G may own by the time this M ends: back to the M's own.
  if (survivor->kthread) {
    kernel_tid(survivor->kthread) = raw_gettid();
    raw_syscall(SYS_set_tid_address, reinterpret_cast<long>(&kernel_tid(survivor->kthread)));
  }
}

}  // namespace mnp
