// core/netpoll.h — fd readiness for Gs (docs/ARCHITECTURE.md, "Blocking
// calls", class "poll").
//
// A G that finds an fd not ready (its non-blocking attempt said EAGAIN)
// parks until the fd becomes ready instead of blocking its M. Each fd has two
// sequence words, bumped when epoll reports read- or write-readiness. A G
// samples the words before its attempt and parks only while they still hold
// the sampled values, so an edge that arrives between the attempt and the
// park is never lost. One wait may cover several fds (poll, select): the G
// links one entry per fd and the first fd to move wakes it.
//
// There is no poller thread. The epoll instance (edge-triggered, fds added
// when a G first waits on them) is read by the scheduler, as Go does:
//   - an M about to look for work elsewhere harvests ready fds without
//     blocking, so the woken Gs land on its own P in batches;
//   - an M with nothing to run, no P, and Gs waiting on fds blocks in
//     epoll_wait instead of on its note — at most one at a time (the
//     "poller"), until the earliest timer of any P; a new earlier timer
//     (or a signal for the program's handler) interrupts it through an
//     eventfd;
//   - sysmon harvests when nobody has for 10 ms (every P busy with Gs that
//     never run out of work).
// Under load nobody sleeps in epoll_wait, so a ready fd costs no kernel
// wake-up at all; the dedicated poller thread this replaced was woken by
// nearly every packet and spent a fifth of an echo server's CPU time there.
#pragma once

#include <atomic>
#include <cstdint>

struct epoll_event;

namespace mnp {

enum class PollDir { kRead, kWrite };
constexpr uint32_t kPollRead = 1, kPollWrite = 2;

// One fd of a wait: the directions wanted and the sequence values the
// caller saw before its non-blocking attempt (netpoll_sample fills them).
struct PollWant {
  int fd;
  uint32_t dirs;  // kPollRead | kPollWrite
  uint32_t rseen, wseen;
};

// Sequence word of fd for dir (valid for the life of the process), null for
// an fd number out of range.
std::atomic<uint32_t>* netpoll_seq(int fd, PollDir dir);
// Fills the seen values of w[0..n). Returns false if some fd is out of range.
bool netpoll_sample(PollWant* w, int n);
// Registers the fds and parks the current G until a sequence word it waits
// on moves from its seen value, or until deadline (monotonic ns; kNever).
// Returns 0 (retry the call), ETIMEDOUT, or EPERM when epoll cannot watch
// one of the fds (a regular file: the caller falls back to a blocking call
// with the P handed off).
//
// A signal the program handles interrupts the wait of the G it was sent to
// (pthread_kill, tgkill: core/sigpend.h), or else of the main G, as the
// kernel prefers the main thread (any G once main has exited); that wait
// returns EINTR:
// always for kPoll (poll, select, epoll_wait are never restarted), and for
// kIo (reads, writes, accept, connect) only when the handler was installed
// without SA_RESTART.
// `blocked` has bit sig-1 set for each signal that must not interrupt the
// wait (the signal mask ppoll, pselect and epoll_pwait wait with);
// kBlockedByG: the waiting G's own mask (core/sigmask.cpp).
// `call`: the wait is part of a call that took a mask (ppoll, pselect,
// epoll_pwait: core/sched.h, CallMask); a handler of the program's that
// ran on the G since the mask took effect ends it with EINTR, checked in
// the park's commit, after which no handler runs on the G before it
// sleeps: natively the mask and the wait are one system call, and a
// signal the mask lets in ends it, however close to the start it lands.
struct CallMask;
enum class Intr : uint8_t { kIo, kPoll };
constexpr uint64_t kBlockedByG = ~0ULL;
int netpoll_wait_any(PollWant* w, int n, int64_t deadline, Intr intr = Intr::kIo, uint64_t blocked = kBlockedByG,
                     const CallMask* call = nullptr);
int netpoll_wait(int fd, PollDir dir, uint32_t seen, int64_t deadline);
// Sleeps until deadline (monotonic ns; kNever: until interrupted) unless a
// handler of the program's interrupts the sleep first, as it would a
// nanosleep: returns 0, or EINTR. `blocked` and `call` as for
// netpoll_wait_any.
int netpoll_sleep(int64_t deadline, uint64_t blocked = kBlockedByG, const CallMask* call = nullptr);
// A handler of the program's for sig just ran, for a signal sent to the
// process (async-signal-safe: counts it and wakes the poller and sysmon,
// which call netpoll_deliver_signals).
void netpoll_signal_arrived(int sig, bool restart);
// Interrupts a wait for each signal counted since the last call.
void netpoll_deliver_signals();
// For a handler of the program's that waits for a G (core/sigpend.h):
// wakes a netpoller wait or sleep of `only` (any G when null) that does not
// block sig, with EINTR where the signal ends that wait natively (setting
// G::sig_eintr), else as a plain wake-up that retries the call. Without
// may_interrupt (the signal is natively the main thread's, not this G's)
// only plain wake-ups, and sleeps are left alone. Returns false if no wait
// qualified.
struct G;
bool netpoll_wake_for_handler(int sig, bool restart, G* only, bool may_interrupt);
// The G the kernel's main thread runs as: the main G, or in a child of fork
// the forking G.
G* netpoll_signal_main();
// In a child of fork: self is the process's main G from now on.
void netpoll_signal_fork_child(G* self);
// The program closes fd (or puts another file on its number: dup2, dup3):
// Gs parked on it wake up (and see EBADF on retry).
void netpoll_close(int fd);
// The same for every fd in [first, last] (close_range, closefrom).
void netpoll_close_range(unsigned first, unsigned last);
// Whether fd is a regular file or a block device: the kernel never cuts a
// read of one short but at its end, and ignores O_NONBLOCK on it, while
// RWF_NOWAIT returns what the page cache holds, or EAGAIN. An fstat, made
// once per fd that is none (sockets and pipes, read on hot paths): that
// answer is kept until the fd is closed or replaced through the calls above.
bool netpoll_fd_is_file(int fd);
// Whether the kernel refused an RWF_NOWAIT read (or write) on fd since it
// was last closed or replaced (an eventfd takes preadv2 with RWF_NOWAIT
// and refuses pwritev2 with it): the caller skips the attempt, one system
// call that would fail every time. A file put on the number behind the
// runtime's back (a close inside libc) inherits the note: its calls are
// then made as real calls with the P handed off, correct but slower.
bool netpoll_fd_refuses_nowait(int fd, PollDir dir);
void netpoll_fd_note_refuses_nowait(int fd, PollDir dir);
// Whether fd's reading side is shut (the kernel reports POLLRDHUP), asked
// after a non-blocking read said EAGAIN: a datagram socket shut down for
// reading (`shutdown(SHUT_RD)`, the usual way to wake a thread blocked in
// its recv) says EAGAIN there, while the blocking call returns 0 at once.
// A poll is made only once the netpoller has reported EPOLLRDHUP for fd
// (a hint kept until fd is closed; one a close the runtime did not see left
// behind costs that poll once and is dropped).
bool netpoll_fd_read_shut(int fd);
// Gs parked on fd wake up and try again (a signalfd read, for a signal the
// kernel does not know is pending: interpose/signalfd.cpp).
inline void netpoll_kick_fd(int fd) { netpoll_close(fd); }
// The epoll instance and its eventfd are made by the first fd wait
// (netpoll_wait_any), not at start-up.
// In a child of fork: the epoll instance is shared with the parent and no
// waiter survived: close it; the child's first fd wait makes its own.
void netpoll_after_fork();
// The program is about to dup2 onto fd, one of the netpoller's (core/rtfd.h):
// it carries on with a copy, or gives that fd up when no number is free.
void netpoll_relocate(int fd);

// ---- scheduler side ----
// True when Gs wait on fds and no M is blocked in the netpoller: a harvest
// may find something.
bool netpoll_worth_polling();
// Harvests ready fds without blocking and readies their Gs (onto the
// caller's P if it holds one, else the global queue). Returns how many Gs.
int netpoll_poll_now();
// For an M without a P and nothing to run: if Gs wait on fds and no other M
// is the poller, blocks in epoll_wait until an fd is ready, the earliest timer
// of any P is due, or a new earlier timer interrupts it. Returns the
// number of events put in ev[0..max), or -1 at once, without blocking, when
// it did not become the poller. The caller dispatches them after taking a P
// if it can (so the woken Gs land on it), else without one. until
// (CLOCK_MONOTONIC ns), unless kNever (INT64_MAX, the default), replaces
// the earliest timer: sysmon gives its own, since it polls while every P is
// busy and fires no timers (an idle M sleeps until the earliest one and
// fires it; sysmon's wake-up for a running P's timer is its own,
// wake_preempt_delay). Bounded by the timers, sysmon called epoll_wait
// with a zero timeout again and again while a timer was due and not yet
// fired (memcached: 7,600 such calls per 80,000 requests, each followed by
// a round of thread-clock reads).
int netpoll_block(struct epoll_event* ev, int max, int64_t until = INT64_MAX);
// Readies the Gs of ev[0..n) (netpoll_block's events). Returns how many.
int netpoll_dispatch(const struct epoll_event* ev, int n);
// A timer at `when` was added: interrupt the poller if it sleeps past it.
void netpoll_timer_added(int64_t when);
// Monotonic ns of the last harvest (sysmon's 10 ms rule).
int64_t netpoll_last_poll();
// Gs parked on fds now (scheddetail, tests).
int netpoll_waiters();

}  // namespace mnp
