// core/sigpend.h — the program's signals that arrived on a thread that is
// no program thread, kept until a G runs their handler.
//
// The kernel gives a process-directed signal to any thread that does not
// block it. Runtime-only threads (sysmon) are created with every signal
// blocked, so the kernel never picks them. An M is a program thread only
// while it runs a G: on g0 (idle on its note, blocked in the netpoller,
// running the scheduler) its TLS is no program thread's — a handler that
// reads a pthread key there finds NULL (perl's interpreter context, GNU
// parallel's SIGCHLD). So the wrapper the handler runs in
// (interpose/signal.cpp, and the runtime's signal handler for the program's
// own action on that signal) sees g0 and stores the signal here, with its siginfo and the action in
// effect when it arrived, and a G runs the handler:
//   - a G about to continue after park() runs what is pending;
//   - sigpend_put kicks the main G's M at once (below) if main runs or is
//     in a system call on an M and lets the signal in;
//   - sysmon (woken by sigpend_put) picks a G for the rest: the main G if it
//     runs on an M, else the main G if it is parked, else any running G,
//     else any parked G; a running G's M gets the runtime's signal with a
//     marker (sigpend_kick_value), whose handler runs the pending handlers
//     on that G; a parked G is woken and runs them from park(): the main G
//     (any G once main has exited or blocks the signal), which natively
//     would have taken the signal, as the signal would end its wait (EINTR
//     from a netpoller wait, sleep, semaphore or futex wait where the
//     kernel gives one: netpoll.h, sema.h), any other G with its wait
//     restarted afterwards; a joiner's join is undone and started again
//     (wake_parked). Found nobody: sysmon tries again on its next round.
// Rejected: re-sending the signal to a thread that runs a G (the kernel
// refuses to forward a siginfo with si_code >= 0, such as SIGCHLD's, from
// any thread but the main one), and blocking signals around every idle
// sleep (two system calls per sleep, and the scheduler's own stretches
// on g0 stay open).
// Each slot goes kFree -> kFilling (the handler that stores it) -> kReady ->
// kTaken (exactly one G, by CAS: a signal never runs twice) -> kFree. Like
// the kernel's pending set, a standard signal that is already pending and
// not yet taken is merged into it; real-time signals queue, up to the number
// of slots.
//
// Thread-directed signals (pthread_kill, raise: sig_send_to_g) use the same
// slots with a target G: only that G takes them, when it does not block
// them — the G's pending set, as the kernel keeps one per thread. The
// sender wakes the target if it is parked (with EINTR where the kernel
// would give one) or kicks its M if it runs; sysmon repeats that every
// round while the slot waits, so a G that switched away meanwhile still
// gets it. A G runs its pending handlers when it returns from park, when
// its M is kicked, and when it unblocks them (pthread_sigmask). A G that
// blocks the signal and reads a signalfd (G::sigfd_fd) is made to look
// again (interpose/signalfd.cpp). A G in
// sigwait or sigsuspend for the signal (G::sigwait_bits) takes it from its
// slot too: its kernel call is ended by the same kick (the runtime's EINTR),
// after which it looks at the slots again. A process-directed
// signal that waits in an untargeted slot goes only to a G that does not
// block it; a G that exits drops its own slots.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace mnp {

struct G;

// The program's action for a signal, as it was when the signal arrived.
struct SigAct {
  void* handler;
  int flags;
  sigset_t mask;
};

// si_value of the runtime's signal when sysmon sends it to make the G that
// runs on that M run the pending handlers ("MNPS").
constexpr int kSigpendKickValue = 0x4d4e5053;
// si_value of the runtime's signal that ends a sigwait in the kernel so
// that it takes a slot kept for it ("MNPW"; core/poke.cpp, keep_pending).
constexpr int kSigwaitKickValue = 0x4d4e5057;

extern std::atomic<uint32_t> sigpend_count;  // slots kFilling or kReady

inline bool sigpend_any() { return sigpend_count.load(std::memory_order_acquire) != 0; }
// The program set sig's action: a handler without SA_RESTART (norestart),
// or anything else. The runtime keeps which signals have such a handler.
void sig_note_norestart(int sig, bool norestart);
// No handler of the program's lacks SA_RESTART (the few-threads path's
// reads and writes: interpose/net.cpp, drive).
bool sig_handlers_restart();

// From a signal handler on g0: keeps sig for a G and wakes sysmon.
// Async-signal-safe.
void sigpend_put(int sig, const siginfo_t* si, const SigAct& act);
// The same, pending for target only (null: for any G, and a G in a
// sigwait or signalfd read for it is made to look). Returns the slot's
// index, or -1 when merged or dropped.
int sigpend_put_for(G* target, int sig, const siginfo_t* si, const SigAct& act);
// Pending for g (its own and the process's), bit sig-1.
uint64_t sigpend_bits_for(G* g);
// Pending for g alone (pthread_kill, tgkill, raise), bit sig-1.
uint64_t sigpend_bits_for_own(G* g);
// sigwait on g: takes a pending signal among `set` (bits), fills *si;
// returns the signal or 0. `which`: g's own and the process's, g's own
// only, or the process's only (a signalfd read takes them in the kernel's
// order: the thread's first).
enum class Pending : uint8_t { kAll, kOwn, kProcess };
int sigpend_take_in(G* g, uint64_t set, siginfo_t* si, Pending which = Pending::kAll);
// g exits: its own pending signals go with it.
void sigpend_forget(G* g);
// pthread_kill/raise to the G t (sig 1..64; t not dead): the kernel's
// per-thread model. Returns 0 or an errno.
int sig_send_to_g(G* t, int sig);
// interpose/signalfd.cpp: after a signal is kept for the process, the
// signalfds that hold it are made to look again (a read of one waits in
// the netpoller).
void set_sigpend_put_hook(void (*hook)(int sig));
// interpose/signal.cpp: the program's action for sig now (handler may be
// SIG_DFL or SIG_IGN).
void set_sigact_hook(void (*hook)(int, SigAct*));
// On a user G: runs the handler of each pending signal (its own or the
// process's) that `blocked` (null: the G's mask) lets through; the
// runtime's signal counts as blocked when the G's own mask has it. `uc`: the
// context a SA_SIGINFO handler gets (null: the current one).
void sigpend_run(void* uc, const sigset_t* blocked);
// sysmon, every round: gets a G to run what is pending. Returns true if it
// did something.
bool sigpend_deliver();
// In a child of fork: nothing is pending.
void sigpend_after_fork();

}  // namespace mnp
