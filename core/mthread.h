// core/mthread.h — the kernel threads of Ms (docs/ARCHITECTURE.md,
// "Start-up": mthread_create).
//
// What: an M's thread is made with the clone system call on memory the
// runtime maps and a TCB it builds itself (tcb_init_standalone), not with
// glibc's pthread_create.
//
// Why: glibc's pthread_create allocates the new thread's DTV with the
// program's calloc, and another preloaded library may wrap it. Either can
// wait for a lock a G holds, and a G needs a P to go on; the P that G needs
// may be the one held for the M being made. Chromium's browser hung so at
// one P (PartitionAlloc's lock), and so did own_allocator.c at every run.
// A clone on runtime memory calls nothing of the program's and waits on
// nothing a G can hold, as Go makes its Ms.
//
// The price: glibc does not know these threads. It leaves them out of the
// set*id broadcast, which the runtime then carries to them itself
// (mthread_xid_*). (gdb still names each by its TCB: thread_db maps a
// kernel thread to its TCB through the FS base, as for glibc's.) Only
// the runtime's own code runs on an M's TCB (handlers of the program's run
// on Gs, but for a fault in the runtime's own code), so the TCB needs no
// more than the images of the start-up modules' TLS.
//
// AddressSanitizer builds (MNP_ASAN) keep glibc's threads for Ms: ASan must
// see every thread that runs instrumented code start.
#pragma once

#include <cstdint>

namespace mnp {

struct M;

// glibc's signal for set*id (SIGSETXID), which the runtime's broadcast
// uses too.
constexpr int kSigSetxid = 33;

// Captures the TLS images Ms' TCBs start with (once; dl_iterate_phdr
// takes the loader's lock). Called when sysmon starts, before any M is
// made, while no other G can hold that lock.
void mthread_prepare();
// Starts mp's kernel thread, which runs entry(mp) and never returns from
// it. Returns 0, or -errno from mmap or clone.
int mthread_create(M* mp, void (*entry)(void*));
// On mp's own thread, its signals open (a set*id broadcast may be waiting
// for it until it leaves the broadcast's list): ends it. Its memory goes to
// the next mthread_create once the kernel has let go of it
// (CLONE_CHILD_CLEARTID).
[[noreturn]] void mthread_exit(M* mp);
// Whether mp's thread was made by mthread_create.
bool mthread_is_raw(const M* mp);

// Credential changes (set*id). Between lock and unlock no M's thread is
// made or ends. After the calling thread and glibc's threads have changed
// (glibc's broadcast), broadcast makes every other M's thread made here
// run the same system call (in its SIGSETXID handler, mthread_xid_serve);
// it returns false when one of them failed.
void mthread_xid_lock();
void mthread_xid_unlock();
bool mthread_xid_broadcast(long nr, long a, long b, long c);
// The SIGSETXID handler's first step: true when the signal was such a
// request for this thread, now done.
bool mthread_xid_serve();
// Fork child, on the forking thread, whose M is survivor: the parent's
// other threads are gone, and their memory is lost to the child (which
// usually execs); the locks are reset.
void mthread_after_fork_child(M* survivor);

}  // namespace mnp
