// interpose/poll.cpp — poll, ppoll, select, pselect, epoll_wait,
// epoll_pwait and epoll_pwait2 park the G on the netpoller
// (docs/ARCHITECTURE.md, "Blocking calls", class "poll").
//
// Each is driven the same way (poll_like): sample the sequence words of the
// fds involved, look with a zero timeout (the real system call, so results,
// revents and errors are the kernel's own), and if nothing is ready park
// until any of the fds moves or the timeout passes, then look again. One
// netpoller wait covers all the fds: a poll of 1,000 sockets parks one G on
// 1,000 entries, not 1,000 kernel threads. An epoll instance of the program
// is itself an fd the netpoller watches (nested epoll): it turns readable
// when one of its own fds is ready.
//
// The process's only G, with nothing else queued, makes the real blocking
// call instead (wait_direct, core/sched.h): nothing could use its P. So
// does a G of a process with no more Gs than Ps, its P left idle for
// whoever needs it (wait_few).
//
// A signal mask (ppoll, pselect, epoll_pwait, epoll_pwait2) is honoured the
// way the netpoller can: the signals in it do not interrupt the wait with
// EINTR (interpose/signal.cpp). Kept on the real call with the P handed off:
// select/pselect with more than FD_SETSIZE fds, and a wait for no fds
// without a timeout (pause). Callers that are not Gs call libc. A call
// with a zero timeout is the real call, bracketed as a quick system call
// (unbracketed, sysmon's signal found the Ms of threads that poll in a
// loop in the kernel, took their calls for blocked ones and handed their
// Ps to new Ms: one kernel thread per poller), and made again after an
// EINTR the runtime's own signal caused (poll_now, interpose/fdcall.h).
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "core/cancel.h"
#include "core/netpoll.h"
#include "core/preempt.h"
#include "core/sched.h"
#include "core/sigpend.h"
#include "interpose/fdcall.h"
#include "interpose/real.h"
#include "interpose/sync.h"

using namespace mnp;

namespace {

// Deadlines: kNever, or monotonic ns. A timeout that overflows is kNever.
int64_t deadline_ms(int ms) { return ms < 0 ? kNever : nanotime() + static_cast<int64_t>(ms) * 1000000; }
int64_t deadline_ts(const struct timespec* ts) {
  if (!ts) return kNever;
  if (ts->tv_sec > (kNever - nanotime()) / 1000000000 - 1) return kNever;
  return nanotime() + static_cast<int64_t>(ts->tv_sec) * 1000000000 + ts->tv_nsec;
}
int64_t left_ns(int64_t deadline) {
  if (deadline == kNever) return kNever;
  int64_t left = deadline - nanotime();
  return left < 0 ? 0 : left;
}

// Small arrays on the stack, large ones on the heap.
template <typename T, int kInline>
class Buf {
 public:
  explicit Buf(size_t n) : p_(n <= kInline ? small_ : static_cast<T*>(malloc(sizeof(T) * n))) {}
  ~Buf() {
    if (p_ != small_) free(p_);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* get() { return p_; }

 private:
  T small_[kInline];
  T* p_;
};

// Drives one poll-like call. attempt() looks without blocking and returns
// the kernel's raw result (> 0 ready, 0 nothing, -errno); blocking(deadline,
// how) is the real call, its P left as `how` says (interpose/blocking.h),
// waiting until deadline at most, for fds epoll cannot watch: each try of
// it takes the time left then, so a call made again after the runtime's
// EINTR (interpose/blocking.h) waits only for what is left. Returns a raw
// result.
// A look with a zero timeout fails with EINTR when a signal is delivered to
// the M meanwhile (the runtime's own, or the program's, which the netpoller
// turns into EINTR for one waiting G of its choice): look again.
template <typename Attempt>
long look(Attempt& attempt) {
  long r;
  do r = attempt();
  while (r == -EINTR);
  return r;
}

// direct: the direct path may be taken (not for a poll of a signalfd the
// runtime completes, which only the netpoller wait can be woken for).
template <typename Attempt, typename Blocking>
long poll_like(PollWant* want, int n, int64_t deadline, uint64_t blocked, bool direct, const CallMask* cm,
               Attempt attempt, Blocking blocking) {
  // The process's only G, or no more Gs than Ps and nothing else to run
  // here: the real call, blocking (core/sched.h, wait_direct and wait_few).
  // A masked call's blocking() takes its mask in the kernel (handoff_raw).
  // The netpoller's wait after such an EINTR (below): it also ends with
  // EINTR for a handler that runs before it parks.
  CallMask since_call{};
  const CallMask* wait_cm = cm;
  if (G* g = get_user_g(); direct && g) {
    if (wait_direct(g)) return direct_call(g, [&] { return blocking(deadline, Enter::kSyscall); });
    if (wait_few(g)) {
      // An EINTR owes the program a handler run on this G since the call
      // (or its mask) began. The kernel may wake the call for a signal sent
      // to the process that an idle M then takes first (idle Ms let in what
      // not every G blocks, core/sigmask.cpp) and keeps for a G; or
      // sysmon's kick for a kept one may find it blocked by the mask the
      // kernel restores after a masked call. Either way: run what is kept
      // and deliverable under the call's mask; if that was nothing, wait
      // out the rest on the netpoller (below), whose wake-up for a handler
      // decides the EINTR. (Made again instead, the real call could start
      // just after the kick ran the handler, and then wait on.) A handler
      // may still run on this G before that wait parks (one the kernel
      // delivers to this thread meanwhile runs at once, in the trampoline):
      // the wait takes the count of handlers run from the call's start, as
      // a masked call's does, so that such a handler ends it too.
      const uint32_t ran = cm ? cm->ran : g->handlers_run;
      uint32_t outer =
          g->in_wait_call.exchange(kWaitCallPoll, std::memory_order_relaxed);  // a handler's call in a call
      long r = blocking(deadline, Enter::kWait);
      g->in_wait_call.store(outer, std::memory_order_relaxed);
      if (r != -EINTR) return r;
      if (g->handlers_run == ran && sigpend_any()) sigpend_run(nullptr, nullptr);
      if (g->handlers_run != ran) return r;
      if (!cm) {
        since_call.ran = ran;
        wait_cm = &since_call;
      }
    }
  }
  for (;;) {
    if (!netpoll_sample(want, n)) return blocking(deadline, Enter::kSyscall);
    long r = look(attempt);
    if (r != 0) {
      preempt_check();  // fds ready: a slice that ended meanwhile ends here
      return r;
    }
    if (deadline != kNever && nanotime() >= deadline) return 0;
    int w = netpoll_wait_any(want, n, deadline, Intr::kPoll, blocked, wait_cm);
    if (w == EPERM) return blocking(deadline, Enter::kSyscall);
    if (w == ETIMEDOUT) return look(attempt);
    if (w == EINTR) return -EINTR;       // a handler of the program's ran
    if (w == ECANCELED) cancel_point();  // pthread_cancel: unwinds from here
  }
}

// A poll or select without fds: a sleep, which pthread_cancel ends.
long sleep_raw(int64_t deadline, uint64_t blocked, const CallMask* cm) {
  for (;;) {
    int r = netpoll_sleep(deadline, blocked, cm);
    if (r != ECANCELED) return r == EINTR ? -EINTR : 0;
    cancel_point();
  }
}

// The real call, through the blocking path (interpose/blocking.h), its P
// left as `how` says; raw result. In a masked call (cm) the real call takes
// the mask itself, and the M blocks every signal until it does
// (g_call_mask_hold): EINTR at once if a handler ran on the G since the mask
// took effect.
template <typename F>
long handoff_raw(F call, const CallMask* cm, Enter how) {
  auto masked = [&]() -> long {
    if (cm && !g_call_mask_hold(get_user_g(), *cm)) {
      errno = EINTR;  // the call's result, as the program sees it
      return -1;
    }
    return call();
  };
  long r = how == Enter::kWait ? blocking_call<Enter::kWait>(masked) : blocking_call<Enter::kSyscall>(masked);
  return r < 0 ? -errno : r;
}

// A wait's signal mask as netpoll_wait_any's bit set (bit sig-1); none
// given: the G's own.
uint64_t blocked_bits(const sigset_t* mask) {
  if (!mask) return kBlockedByG;
  uint64_t bits = 0;
  if (mask)
    for (int sig = 1; sig <= 64; sig++)
      if (sigismember(mask, sig) == 1) bits |= 1ULL << (sig - 1);
  return bits;
}

int ms_of(int64_t ns) {
  if (ns == kNever) return -1;
  int64_t ms = (ns + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

struct timespec ts_of(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// A real call's timeout: the time left until deadline in *ts, or null for
// kNever.
const struct timespec* left_ts(int64_t deadline, struct timespec* ts) {
  if (deadline == kNever) return nullptr;
  *ts = ts_of(left_ns(deadline));
  return ts;
}

// poll and ppoll: raw results. A mask (ppoll) is the set of signals that
// must not interrupt the wait.
long do_poll(struct pollfd* fds, nfds_t n, int64_t deadline, const sigset_t* mask, const CallMask* cm) {
  // A signalfd of the program's is also readable for the signals pending
  // for this G alone (interpose/signalfd.cpp).
  SignalfdPoll sp;
  auto attempt = [&] {
    struct timespec zero = {0, 0};
    long r = look_again_on_eintr(
        [&] {
          return raw_syscall6(SYS_ppoll, reinterpret_cast<long>(fds), static_cast<long>(n),
                              reinterpret_cast<long>(&zero), 0, 0, 0);
        },
        true);
    return r >= 0 ? signalfd_poll_merge(&sp, fds, n, r) : r;
  };
  // The kernel looks first: it validates fds (EFAULT) and n (EINVAL above
  // RLIMIT_NOFILE) before anything here reads them.
  if (long r = look(attempt); r != 0) return r;
  Buf<PollWant, 16> want(n);
  if (!want.get()) return -ENOMEM;
  int k = 0;
  for (nfds_t i = 0; i < n; i++) {
    if (fds[i].fd < 0) continue;
    short ev = fds[i].events;
    uint32_t dirs = 0;
    if (ev & (POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP)) dirs |= kPollRead;
    if (ev & (POLLOUT | POLLWRNORM | POLLWRBAND)) dirs |= kPollWrite;
    // Hang-up and errors are always reported; they move the read word too.
    want.get()[k++] = PollWant{fds[i].fd, dirs ? dirs : kPollRead, 0, 0};
  }
  if (k == 0) {  // no fds: a sleep
    if (deadline == kNever)
      return handoff_raw([&] { return static_cast<long>(real_ppoll(fds, n, nullptr, mask)); }, cm, Enter::kSyscall);
    return sleep_raw(deadline, blocked_bits(mask), cm);
  }
  // A signalfd of the program's in the set (sp armed by the look above): a
  // signal left pending for this G alone by another thread wakes the
  // netpoller wait (signalfd.cpp), never the kernel's poll.
  return poll_like(want.get(), k, deadline, blocked_bits(mask), !sp.armed, cm, attempt, [&](int64_t dl, Enter how) {
    return handoff_raw(
        [&] {
          struct timespec ts;
          return static_cast<long>(real_ppoll(fds, n, left_ts(dl, &ts), mask));
        },
        cm, how);
  });
}

// select and pselect: raw results (a mask as for ppoll). The sets are in/out and
// are at most FD_SETSIZE bits here: with a larger nfds the kernel reads only
// as many bits as its fd table has, which is not known here, so the
// wrappers give such calls to the real select with the P handed off. Each
// attempt works on copies of the sets as they were on entry. The program's
// sets change only as the kernel changes them: to the ready fds when some
// are ready, all cleared when the time runs out (result 0), and not at all
// on an error, EINTR included: a program that retries after EINTR with the
// same sets (cmake's process loop on SIGCHLD) must wait for the same fds. A
// look that finds nothing ready is not a result, so it leaves them alone.
long do_select(int nfds, fd_set* r, fd_set* w, fd_set* e, int64_t deadline, const sigset_t* mask, const CallMask* cm) {
  if (nfds < 0) return -EINVAL;
  if (nfds > FD_SETSIZE) nfds = FD_SETSIZE;  // callers hand larger ones to the real call
  using Word = unsigned long;
  constexpr int kBits = 8 * sizeof(Word);
  const size_t words = (static_cast<size_t>(nfds) + kBits - 1) / kBits;
  Word* in[3] = {reinterpret_cast<Word*>(r), reinterpret_cast<Word*>(w), reinterpret_cast<Word*>(e)};
  Buf<Word, 6 * (FD_SETSIZE / kBits) + 1> sets(6 * words + 1);  // entry copies, then work copies
  Buf<PollWant, 16> want(static_cast<size_t>(nfds) + 1);
  if (!sets.get() || !want.get()) return -ENOMEM;
  Word* orig = sets.get();
  Word* work = sets.get() + 3 * words;
  for (int i = 0; i < 3; i++)
    for (size_t k = 0; k < words; k++) orig[i * words + k] = in[i] ? in[i][k] : 0;
  int n = 0;
  for (int fd = 0; fd < nfds; fd++) {
    Word bit = Word{1} << (fd % kBits);
    size_t k = static_cast<size_t>(fd / kBits);
    uint32_t dirs = 0;
    if ((orig[k] | orig[2 * words + k]) & bit) dirs |= kPollRead;  // exceptional = urgent data
    if (orig[words + k] & bit) dirs |= kPollWrite;
    if (dirs) want.get()[n++] = PollWant{fd, dirs, 0, 0};
  }
  auto attempt = [&] {
    for (size_t k = 0; k < 3 * words; k++) work[k] = orig[k];
    long arg[3];
    for (int i = 0; i < 3; i++) arg[i] = in[i] ? reinterpret_cast<long>(work + i * words) : 0;
    struct timespec zero = {0, 0};
    long res = raw_syscall6(SYS_pselect6, nfds, arg[0], arg[1], arg[2], reinterpret_cast<long>(&zero), 0);
    if (res > 0)
      for (int i = 0; i < 3; i++)
        if (in[i])
          for (size_t k = 0; k < words; k++) in[i][k] = work[i * words + k];
    return res;
  };
  // The real call reads and writes the program's sets itself, which are
  // still as on entry.
  auto blocking = [&](int64_t dl, Enter how) {
    return handoff_raw(
        [&] {
          struct timespec ts;
          return static_cast<long>(real_pselect(nfds, r, w, e, left_ts(dl, &ts), mask));
        },
        cm, how);
  };
  long res;
  if (n == 0) {
    res = look(attempt);
    if (res == 0) {
      if (deadline == kNever) return blocking(kNever, Enter::kSyscall);
      res = sleep_raw(deadline, blocked_bits(mask), cm);
    }
  } else {
    res = poll_like(want.get(), n, deadline, blocked_bits(mask), true, cm, attempt, blocking);
  }
  if (res == 0)  // the time ran out: the kernel clears the sets (whole words)
    for (int i = 0; i < 3; i++)
      if (in[i])
        for (size_t k = 0; k < words; k++) in[i][k] = 0;
  return res;
}

long do_epoll(int epfd, struct epoll_event* ev, int max, int64_t deadline, const sigset_t* mask, const CallMask* cm) {
  PollWant want{epfd, kPollRead, 0, 0};
  auto attempt = [&] { return raw_syscall6(SYS_epoll_wait, epfd, reinterpret_cast<long>(ev), max, 0, 0, 0); };
  return poll_like(&want, 1, deadline, blocked_bits(mask), true, cm, attempt, [&](int64_t dl, Enter how) {
    return handoff_raw([&] { return static_cast<long>(real_epoll_pwait(epfd, ev, max, ms_of(left_ns(dl)), mask)); }, cm,
                       how);
  });
}

bool bad_timespec(const struct timespec* ts) {
  return ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000);
}

}  // namespace

namespace {
// The kernel makes a ppoll/pselect/epoll_pwait mask the thread's own mask
// for the whole call: a pending signal it unblocks is delivered at once (the
// handler runs, the call fails with EINTR), and one sent meanwhile can reach
// the thread. On a G the mask becomes the G's own for the wait, so the idle
// Ms' kernel mask (what every G blocks, core/sigmask.cpp) lets the signal in
// too: GNU make blocks SIGCHLD everywhere and waits for it in pselect with
// it unblocked, and hung for ever while the process-wide SIGCHLD stayed
// pending in the kernel. The old mask comes back before the call returns.
// From the moment the mask takes effect the call is under way: a handler
// that runs on the G before it parks (or before the real call, handed off)
// ends it with EINTR (netpoll_wait_any's `call`, g_call_mask_hold). wait
// gets the CallMask, or null when there is none.
template <typename F>
long with_wait_mask(const sigset_t* mask, const F& wait) {
  G* g = get_user_g();
  if (!mask || !g || !runtime_up) return wait(nullptr);
  CallMask cm;
  long r = g_call_mask_begin(g, mask, &cm) ? -long{EINTR} : wait(&cm);
  // Kept for this G while it waited, and let in by the call's mask: its
  // handler runs before the call returns, as the kernel runs it in the call
  // (a handed-off call that sysmon's kick ended, under the held mask).
  if (sigpend_any()) sigpend_run(nullptr, nullptr);
  g_call_mask_end(g, cm);
  preempt_check();  // held back while the call's mask was the G's
  return r;
}
}  // namespace

extern "C" {

MNP_EXPORT int poll(struct pollfd* fds, nfds_t n, int timeout) {
  if (timeout == 0) return poll_now(real_poll, fds, n, 0);
  if (!fd_caller_is_g()) return real_poll(fds, n, timeout);
  return static_cast<int>(raw_to_libc(do_poll(fds, n, deadline_ms(timeout), nullptr, nullptr)));
}

MNP_EXPORT int ppoll(struct pollfd* fds, nfds_t n, const struct timespec* t, const sigset_t* mask) {
  if (t && t->tv_sec == 0 && t->tv_nsec == 0) return poll_now(real_ppoll, fds, n, t, mask);
  if (!fd_caller_is_g()) return real_ppoll(fds, n, t, mask);
  if (bad_timespec(t)) return static_cast<int>(raw_to_libc(-EINVAL));
  return static_cast<int>(
      raw_to_libc(with_wait_mask(mask, [&](const CallMask* cm) { return do_poll(fds, n, deadline_ts(t), mask, cm); })));
}

// _FORTIFY_SOURCE's versions for an array of known size: glibc's check,
// then the calls above.
MNP_EXPORT int __poll_chk(struct pollfd* fds, nfds_t n, int timeout, size_t fdslen) noexcept {
  if (fdslen / sizeof *fds < n) fortify_fail();
  return poll(fds, n, timeout);
}

MNP_EXPORT int __ppoll_chk(struct pollfd* fds, nfds_t n, const struct timespec* t, const sigset_t* mask,
                           size_t fdslen) noexcept {
  if (fdslen / sizeof *fds < n) fortify_fail();
  return ppoll(fds, n, t, mask);
}

// Linux select writes the time not slept back into *timeout.
MNP_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* e, struct timeval* tv) {
  if (tv && tv->tv_sec == 0 && tv->tv_usec == 0) return poll_now(real_select, nfds, r, w, e, tv);
  if (!fd_caller_is_g()) return real_select(nfds, r, w, e, tv);
  if (nfds > FD_SETSIZE) return handoff(real_select, nfds, r, w, e, tv);
  if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) return static_cast<int>(raw_to_libc(-EINVAL));
  int64_t deadline = kNever;
  if (tv) {
    struct timespec ts = {tv->tv_sec + tv->tv_usec / 1000000, (tv->tv_usec % 1000000) * 1000};
    deadline = deadline_ts(&ts);
  }
  long res = do_select(nfds, r, w, e, deadline, nullptr, nullptr);
  if (tv && deadline != kNever) {  // whatever the result, EINTR included
    int64_t left = left_ns(deadline);
    tv->tv_sec = static_cast<time_t>(left / 1000000000);
    tv->tv_usec = static_cast<suseconds_t>(left % 1000000000 / 1000);
  }
  return static_cast<int>(raw_to_libc(res));
}

MNP_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const struct timespec* t, const sigset_t* mask) {
  if (t && t->tv_sec == 0 && t->tv_nsec == 0) return poll_now(real_pselect, nfds, r, w, e, t, mask);
  if (!fd_caller_is_g()) return real_pselect(nfds, r, w, e, t, mask);
  if (nfds > FD_SETSIZE) return handoff(real_pselect, nfds, r, w, e, t, mask);
  if (bad_timespec(t)) return static_cast<int>(raw_to_libc(-EINVAL));
  return static_cast<int>(raw_to_libc(
      with_wait_mask(mask, [&](const CallMask* cm) { return do_select(nfds, r, w, e, deadline_ts(t), mask, cm); })));
}

MNP_EXPORT int epoll_wait(int epfd, struct epoll_event* ev, int max, int timeout) {
  if (timeout == 0) return poll_now(real_epoll_wait, epfd, ev, max, 0);
  if (!fd_caller_is_g()) return real_epoll_wait(epfd, ev, max, timeout);
  return static_cast<int>(raw_to_libc(do_epoll(epfd, ev, max, deadline_ms(timeout), nullptr, nullptr)));
}

MNP_EXPORT int epoll_pwait(int epfd, struct epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  if (timeout == 0) return poll_now(real_epoll_pwait, epfd, ev, max, 0, mask);
  if (!fd_caller_is_g()) return real_epoll_pwait(epfd, ev, max, timeout, mask);
  return static_cast<int>(raw_to_libc(with_wait_mask(
      mask, [&](const CallMask* cm) { return do_epoll(epfd, ev, max, deadline_ms(timeout), mask, cm); })));
}

MNP_EXPORT int epoll_pwait2(int epfd, struct epoll_event* ev, int max, const struct timespec* t, const sigset_t* mask) {
  if (t && t->tv_sec == 0 && t->tv_nsec == 0) return poll_now(real_epoll_pwait2, epfd, ev, max, t, mask);
  if (!fd_caller_is_g()) return real_epoll_pwait2(epfd, ev, max, t, mask);
  if (bad_timespec(t)) return static_cast<int>(raw_to_libc(-EINVAL));
  return static_cast<int>(raw_to_libc(
      with_wait_mask(mask, [&](const CallMask* cm) { return do_epoll(epfd, ev, max, deadline_ts(t), mask, cm); })));
}

}  // extern "C"
