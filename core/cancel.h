// core/cancel.h — cancellation of a G: deferred, of a parked G, and where
// an asynchronous one acts (docs/ARCHITECTURE.md, "Cancellation").
//
// What: pthread_cancel of a G must end the cancellable wait it is parked in
// (condvar, semaphore, join, sleep, fd and poll waits, hand-off calls), so
// that the G itself can act on the request at the end of that wait.
//
// The request lives where glibc keeps it: the `cancelhandling` word of the
// G's TCB, with glibc 2.36's bit layout, so glibc's own pthread_testcancel,
// pthread_setcancelstate/-type and cancellation points read and act on it.
// The runtime adds only a way to reach the wait: a G that may sleep in a
// cancellable wait publishes a CancelWait record (on its own stack) in
// G::cancel_wait; the canceller calls the record's `wake`, which ends the
// wait the way that wait's own timeout would (withdraw the sema waiter,
// decide a netpoll wait, undo a join, signal the M of a hand-off call).
//
// Ordering (Dekker, seq_cst both sides): the waiter stores its record, then
// reads cancelhandling; the canceller sets the bits, then reads the record.
// Either the waiter sees the request (and does not sleep) or the canceller
// sees the record (and wakes it). The record stays valid while the canceller
// uses it: the canceller raises G::cancel_busy before it reads the record,
// and the waiter, after withdrawing the record, waits for the flag to drop
// before its frame goes (the pattern of netpoll_sleep's interrupters).
// Cancellers are serialised by one lock, so cancel_busy has one setter.
//
// Rejected: waking every waiter of the address a G sleeps on (no per-G
// record). A condvar or semaphore tolerates spurious wake-ups, but the
// request can arrive between the waiter's check and its enqueue; without
// the record there is nothing to close that window with.
//
// Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS, or glibc's window
// around the system call of a cancellation point) acts at any instruction
// of program code, never inside the runtime. pthread_cancel sends SIGCANCEL
// to the target's M; its handler acts only if it interrupted that G's
// program code. Where it finds the runtime instead, the request bits in
// the G's cancelhandling word are the mark that stays, and the G acts
// when it next returns from the runtime to program code at one of the
// points that check them (cancel_async_point, cancel_async_return): the end
// of poke_handler (core/poke.cpp), through which a preempted G resumes and
// on whose first instruction SIGCANCEL lands when it arrives together with
// the runtime's signal (glibc's sigfillset leaves SIGCANCEL out of every
// handler's mask), the end of the trampoline of the program's handlers
// (interpose/signal.cpp), and the return of pthread_cancel, the one
// async-cancel-safe function the shim implements. So a program that is
// asynchronously cancelable only in async-cancel-safe code, as POSIX asks,
// is always cancelled at once; one whose SIGCANCEL finds it inside another
// interposed function is cancelled at its next cancellation point.
//
// Rejected: sysmon preempting a G with a due asynchronous request, so that
// the preemption's return acts on it. A G that keeps scheduling (its tick
// moves) or that sysmon's blocked-M detection left without a P is never
// preempted, and one alone on its P only after 10 ms.
#pragma once

#include <ucontext.h>

#include <atomic>
#include <cstdint>

#include "core/sched.h"
#include "core/tcb.h"

namespace mnp {

// glibc 2.36's cancelhandling bits (nptl/descr.h). Only their meaning is
// used: set by pthread_cancel, read by glibc and by the runtime.
namespace cancelbit {
constexpr int kDisabled = 1 << 0;   // PTHREAD_CANCEL_DISABLE
constexpr int kAsync = 1 << 1;      // PTHREAD_CANCEL_ASYNCHRONOUS (or inside a glibc cancellation point)
constexpr int kCanceling = 1 << 2;  // a request was made
constexpr int kCanceled = 1 << 3;   // ... and is to be acted on
constexpr int kExiting = 1 << 4;    // the thread is unwinding / exiting
constexpr int kTerminated = 1 << 5;
}  // namespace cancelbit

inline std::atomic<int>& cancelhandling(G* g) { return tcb_field<std::atomic<int>>(g->tcb, tcbo::kCancelHandling); }
// A request is pending and cancellation is enabled (glibc's
// cancel_enabled_and_canceled): a cancellation point acts on it.
inline bool cancel_due(int v) {
  using namespace cancelbit;
  return (v & (kDisabled | kCanceled | kExiting | kTerminated)) == kCanceled;
}
// ... and the type is asynchronous: act on it anywhere.
inline bool cancel_due_async(int v) {
  using namespace cancelbit;
  return (v & (kDisabled | kAsync | kCanceled | kExiting | kTerminated)) == (kAsync | kCanceled);
}

struct CancelWait {
  void (*wake)(CancelWait* cw);  // runs in the canceller, any thread, under the cancel lock
  // Optional: ends the wait for a handler of the program's that must run
  // on this G (core/sigpend.h) so that the caller can wait again; returns
  // false if the wait was over already. Same rules as wake.
  bool (*sig_wake)(CancelWait* cw) = nullptr;
};

// Waiter side. Publishes cw; returns true if a request is already due (the
// caller then ends its wait itself). Every cancel_arm is followed by one
// cancel_disarm before cw's frame goes.
bool cancel_arm(G* g, CancelWait* cw);
void cancel_disarm(G* g);

// Canceller side: sets the request bits in g's TCB as glibc's pthread_cancel
// does (CANCELING|CANCELED). Returns the previous value.
int cancel_set_request(G* g);
// Ends the cancellable wait g has published, if any.
void cancel_wake(G* g);
// Ends g's published wait with its sig_wake, if it has one; false if not.
bool cancel_wake_for_signal(G* g);

// Acts on a due request of the calling G: unwinds through its cleanup
// handlers and destructors (glibc's pthread_testcancel); returns otherwise.
// Call it only where the G holds no runtime state (locks, P hand-off, wait
// records).
void cancel_point();

// In a signal handler on gp's M, about to return to the interrupted
// context uc (or, from SIGCANCEL's own handler, at once): acts on gp's due
// asynchronous request if uc is gp's program code where it may unwind
// (the FS base and tls_g are gp's, the PC is outside the runtime, no
// runtime lock is held, every wrapped call gp is in has a cleanup buffer);
// returns otherwise.
void cancel_async_point(G* gp, ucontext_t* uc);
// The same for the calling G outside a signal handler, at the return of
// an interposed function that is async-cancel-safe (pthread_cancel).
void cancel_async_return();
// Leaves a signal handler by unwinding the current thread (glibc's
// pthread_testcancel), with the mask the handler interrupted (the kernel
// would restore it on sigreturn, which never comes).
void cancel_unwind_from_handler(ucontext_t* uc);

}  // namespace mnp
