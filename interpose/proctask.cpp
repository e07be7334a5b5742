// interpose/proctask.cpp — /proc/self/task/<id>/stat of a G
// (docs/ARCHITECTURE.md, "Thread ids").
//
// A G's id names no kernel task, so the kernel has no such directory.
// Programs that watch their own threads read that file: netdata reads it
// for each of its workers every second and, finding none, filled its log
// with "Cannot open file" until its flood guard dropped every later line,
// and lost its per-thread CPU charts. An open of exactly that path (also
// through /proc/<pid>/task/) for a live G's id gets a memfd holding the
// line the kernel would write: the process's own /proc/self/stat with the
// G's id, name, state and CPU time (all of it as user time) put in, and
// the fields the kernel counts per thread (faults, children's times) zero.
// The line is written again when the fd is seeked to its start (how a
// reader of /proc files reads the next sample), so a watcher sees the G's
// time go on; once the G has exited the last line stays. An fd is known by
// its number and its memfd's inode: a close the shim does not see (fclose
// after fdopen, dup2 onto it, close_range) leaves an entry that the next
// file with that number does not match, and a new open of that number
// drops it.
//
// Only absolute paths of open/openat and read-only opens are looked at;
// fopen (glibc opens inside libc) and the other files of such a directory
// (status, comm, ...) still do not exist for a G. At most kFds such fds
// are open at once; more opens fail as before (ENOENT).
//
// Both lseek and lseek64 are interposed, so the headers must not redirect
// one to the other.
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "core/cpuclock.h"
#include "core/gmem.h"
#include "core/sched.h"
#include "interpose/proctask.h"
#include "interpose/real.h"

namespace mnp {
namespace {

constexpr int kFds = 64;
constexpr int kClaimed = -2;  // an entry being filled in
struct Entry {
  std::atomic<int> fd{-1};
  uint32_t tid = 0;
  uint64_t ino = 0;  // the memfd's (inode_of), checked before a rewrite
};
constinit Entry g_fds[kFds];
constinit std::atomic<int> g_nfds{0};

// The id of "/proc/self/task/<id>/stat" or "/proc/<our pid>/task/<id>/stat",
// or 0.
uint32_t parse(const char* path) {
  const char* p = path + 6;  // after "/proc/"
  if (strncmp(p, "self/", 5) == 0) {
    p += 5;
  } else {
    long pid = 0;
    if (*p < '1' || *p > '9') return 0;  // no leading zero, as the kernel's names
    for (int digits = 0; *p >= '0' && *p <= '9'; digits++) {
      if (digits == 10) return 0;
      pid = pid * 10 + (*p++ - '0');
    }
    if (*p != '/' || pid != raw_syscall(SYS_getpid)) return 0;
    p++;
  }
  if (strncmp(p, "task/", 5) != 0) return 0;
  p += 5;
  uint64_t id = 0;
  if (*p < '1' || *p > '9') return 0;
  while (*p >= '0' && *p <= '9' && id <= UINT32_MAX) id = id * 10 + static_cast<uint64_t>(*p++ - '0');
  if (id > UINT32_MAX || strcmp(p, "/stat") != 0) return 0;
  return static_cast<uint32_t>(id);
}

char state_of(uint32_t st) {
  switch (st) {
    case kGRunning:
    case kGRunnable:
      return 'R';
    case kGDead:
      return 'Z';
    default:
      return 'S';
  }
}

// What a G's line needs, copied while the G cannot go away.
struct Snap {
  uint32_t tid = 0;
  uint32_t status = 0;
  int64_t cpu_ns = 0;
  char name[17] = {};
};

bool snap(uint32_t tid, Snap* out) {
  return gmem_with_tid(tid, [&](G* g) {
    out->tid = g->fake_tid;
    out->status = g->status.load(std::memory_order_acquire);
    out->cpu_ns = g_cpu_ns(g);
    static_assert(sizeof out->name > sizeof g->name);
    memcpy(out->name, g->name, sizeof g->name);
  });
}

// Writes the G's stat line into fd (from offset 0, truncated to it).
// Returns false if the process's own line could not be read.
bool fill(int fd, const Snap& g) {
  char proc[1024];
  long pfd = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/stat"), O_RDONLY | O_CLOEXEC);
  if (pfd < 0) return false;
  long n = raw_syscall(SYS_read, pfd, reinterpret_cast<long>(proc), sizeof proc - 1);
  raw_syscall(SYS_close, pfd);
  if (n <= 0) return false;
  proc[n] = '\0';
  // Fields from 3 (state) on follow the last ')': the name may hold one.
  const char* rest = strrchr(proc, ')');
  const char* open = strchr(proc, '(');
  if (!rest || !open || rest[1] != ' ') return false;
  char name[sizeof g.name];
  memcpy(name, g.name, sizeof name);
  if (!name[0]) {  // unnamed: the process's name, as the kernel gives a new thread
    size_t len = static_cast<size_t>(rest - open - 1);
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, open + 1, len);
    name[len] = '\0';
  }
  rest += 2;
  bool main_g = g.tid == static_cast<uint32_t>(raw_syscall(SYS_getpid));
  long hz = sysconf(_SC_CLK_TCK);
  unsigned long long ticks = static_cast<unsigned long long>(g.cpu_ns) / (1000000000ULL / (hz > 0 ? hz : 100));
  char out[1280];
  int len = snprintf(out, sizeof out, "%u (%s)", g.tid, name);
  // Field k (3-based) of the process's line, rewritten where it is per thread.
  int field = 3;
  for (const char* p = rest; *p && *p != '\n' && len < static_cast<int>(sizeof out) - 32; field++) {
    const char* end = p;
    while (*end && *end != ' ' && *end != '\n') end++;
    if (field == 3) {
      len += snprintf(out + len, sizeof out - len, " %c", state_of(g.status));
    } else if (field >= 10 && field <= 17) {  // faults, utime, stime, children's times
      len += snprintf(out + len, sizeof out - len, " %llu", field == 14 ? ticks : 0ULL);
    } else if (field == 38 && !main_g) {  // exit_signal: a thread's is -1
      len += snprintf(out + len, sizeof out - len, " -1");
    } else {
      len += snprintf(out + len, sizeof out - len, " %.*s", static_cast<int>(end - p), p);
    }
    p = *end == ' ' ? end + 1 : end;
  }
  len += snprintf(out + len, sizeof out - len, "\n");
  raw_syscall(SYS_ftruncate, fd, 0);
  raw_syscall(SYS_pwrite64, fd, reinterpret_cast<long>(out), len, 0);
  return true;
}

Entry* entry_of(int fd) {
  if (fd < 0 || g_nfds.load(std::memory_order_acquire) == 0) return nullptr;
  for (auto& e : g_fds)
    if (e.fd.load(std::memory_order_acquire) == fd) return &e;
  return nullptr;
}

// The memfd's inode and device in one number (0: no such fd).
uint64_t inode_of(int fd) {
  struct stat st;
  return raw_syscall(SYS_fstat, fd, reinterpret_cast<long>(&st)) == 0 ? st.st_ino * 31 + st.st_dev + 1 : 0;
}

void forget(Entry* e, int fd) {
  int was = fd;
  if (e->fd.compare_exchange_strong(was, -1, std::memory_order_acq_rel)) g_nfds.fetch_sub(1, std::memory_order_release);
}

}  // namespace

bool proc_task_open(const char* path, int flags, int* out) {
  // Not in a vfork child: it shares this table but not the fds.
  if (!runtime_up || tls_vfork_child || (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_DIRECTORY | O_PATH)))
    return false;
  uint32_t tid = parse(path);
  if (tid == 0) return false;
  Snap g;
  if (!snap(tid, &g)) return false;
  long m =
      raw_syscall(SYS_memfd_create, reinterpret_cast<long>("mnp-task-stat"), (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
  if (m < 0) return false;
  int fd = static_cast<int>(m);
  if (!fill(fd, g)) {
    raw_syscall(SYS_close, fd);
    return false;
  }
  // An entry left with this number by a close the shim did not see.
  while (Entry* stale = entry_of(fd)) forget(stale, fd);
  uint64_t ino = inode_of(fd);
  for (auto& e : g_fds) {
    int free_fd = -1;
    if (e.fd.compare_exchange_strong(free_fd, kClaimed, std::memory_order_acq_rel)) {
      e.tid = tid;
      e.ino = ino;
      e.fd.store(fd, std::memory_order_release);
      g_nfds.fetch_add(1, std::memory_order_release);
      *out = fd;
      return true;
    }
  }
  raw_syscall(SYS_close, fd);  // table full: as before, no such file
  return false;
}

void proc_task_rewind(int fd) {
  Entry* e = entry_of(fd);
  if (!e || tls_vfork_child) return;
  // Another file under this number now (closed where the shim did not see).
  if (inode_of(fd) != e->ino) {
    forget(e, fd);
    return;
  }
  if (Snap g; snap(e->tid, &g)) fill(fd, g);
}

void proc_task_close(int fd) {
  if (Entry* e = entry_of(fd)) forget(e, fd);
}

}  // namespace mnp

using namespace mnp;

// Seeking such an fd to its start writes the G's line again; every other
// lseek is the kernel's alone.
extern "C" MNP_EXPORT off_t lseek(int fd, off_t off, int whence) noexcept {
  if (MNP_UNLIKELY(off == 0 && whence == SEEK_SET && g_nfds.load(std::memory_order_relaxed) != 0)) proc_task_rewind(fd);
  return real_lseek(fd, off, whence);
}
extern "C" MNP_EXPORT off64_t lseek64(int fd, off64_t off, int whence) noexcept {
  if (MNP_UNLIKELY(off == 0 && whence == SEEK_SET && g_nfds.load(std::memory_order_relaxed) != 0)) proc_task_rewind(fd);
  return real_lseek64(fd, off, whence);
}
