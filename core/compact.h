// core/compact.h — the pages of long-parked Gs (their top stack frames,
// static TLS, TCB and G) copied out compactly and given back to the kernel,
// restored by a userfaultfd handler thread the moment anything touches them
// again (docs/ARCHITECTURE.md, "Compacting parked Gs").
//
// gmem's idle shrink (core/gmem.cpp) decides which Gs and which ranges; this
// module owns the userfaultfd, the handler thread, the page -> record table
// and the records' memory. Nothing here touches a compacted page: a thread
// that did so while holding the table lock would wait for the handler, which
// needs that lock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnp {

// A range of one G: [lo, hi) holds what must survive (page aligned).
struct CompactRange {
  uintptr_t lo, hi;
};

// Whether compaction can run in this process: a userfaultfd that serves
// faults from kernel mode too (root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1
// or access to /dev/userfaultfd) with write protection for anonymous memory.
// Opens it and starts the handler thread on the first call that finds it
// possible. sysmon only.
bool compact_ready();
// Registers a stack slab [base, base + len) with the userfaultfd (its
// missing pages are then filled by the handler: zeros for fresh ones).
bool compact_register(uintptr_t base, size_t len);
// Fills the missing pages of [lo, hi) (page aligned, at most
// kCompactMaxPages, in a registered slab) with zeros from the calling
// thread: a new G's first pages, which would otherwise each cost a fault
// served by the handler thread.
void compact_prefill(uintptr_t lo, uintptr_t hi);
// sysmon: compacts the n ranges (ascending, inside [run_lo, run_hi), of one
// registered slab) and gives back all of [run_lo, run_hi): what lies outside
// the ranges must be dead. False if nothing was compacted (the memory is
// then as before).
bool compact_run(const CompactRange* rs, int n, uintptr_t run_lo, uintptr_t run_hi);
constexpr int kCompactMaxRun = 512;
constexpr size_t kCompactMaxPages = 16;  // a range's size at most, in pages
// Whether the page holding addr is compacted now (lock-free when none is).
bool compact_holds(uintptr_t addr);
// Ranges compacted now.
uint64_t compact_count();
// Restores every compacted range (sysmon, once a tracer appears: a debugger
// stops the handler with the rest of the process).
void compact_restore_all();
// fork: the child's memory would be a copy without the userfaultfd, its
// compacted pages zeros. The prepare handler restores everything and holds
// compaction off until the parent's or child's handler.
void compact_before_fork();
void compact_after_fork_parent();
void compact_after_fork_child();
// core/rtfd.h: the program is about to take the userfaultfd's number.
bool compact_owns_fd(int fd);
void compact_relocate_fd(int fd);

}  // namespace mnp
