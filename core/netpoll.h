// core/netpoll.h — fd readiness for Gs (DESIGN §5, class "poll").
//
// A G that finds an fd not ready (its non-blocking attempt said EAGAIN)
// parks until the fd becomes ready instead of blocking its M. Each fd has two
// sequence words, bumped by the netpoller on read- and write-readiness; a G
// samples the word before its attempt and sleeps in the sema table only while
// the word still has that value, so an edge that arrives between the attempt
// and the sleep is never lost.
//
// The netpoller is one epoll instance (edge-triggered registrations, added
// lazily and re-added on every wait, so an fd number reused behind our back
// is re-registered) and one kernel thread without a P blocked in
// epoll_wait. Rejected for now: polling from idle Ms as Go does (it saves a
// thread hop per wake-up but needs an eventfd to interrupt a sleeping
// poller); the dedicated thread keeps every M's idle path unchanged.
#pragma once

#include <atomic>
#include <cstdint>

namespace mnp {

enum class PollDir { kRead, kWrite };

// Sequence word of fd for dir (valid for the life of the process).
std::atomic<uint32_t>* netpoll_seq(int fd, PollDir dir);
// Registers fd and parks the current G until the sequence word moves from
// `seen` or until deadline (monotonic ns; kNever). Returns 0 (retry the
// call), ETIMEDOUT, or EPERM when epoll cannot watch this fd (a regular file:
// the caller falls back to a blocking call with the P handed off).
int netpoll_wait(int fd, PollDir dir, uint32_t seen, int64_t deadline);
// The program closes fd: Gs parked on it wake up (and see EBADF on retry).
void netpoll_close(int fd);
bool netpoll_start();
// Harvests ready fds without blocking (an M about to go idle calls it, so
// the woken Gs land on its own P). Returns how many events it handled.
int netpoll_poll_now();
// In a child of fork: the epoll instance is shared with the parent, and the
// poller thread is gone: make a new one.
void netpoll_after_fork();

}  // namespace mnp
