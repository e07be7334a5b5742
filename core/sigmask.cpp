// core/sigmask.cpp — each G's signal mask, and the kernel mask of each M.
//
// Natively every thread has its own mask. A G has no kernel thread, so its
// mask is kept in the G (G::sigmask, what pthread_sigmask reads back) and
// loaded into its M's kernel thread while it runs (G::kmask, minus the
// runtime's signal, 32 and 33, which stay open on every M). Each M
// remembers the mask its thread has (M::kmask), and a switch to a G costs
// an rt_sigprocmask only when the G's kmask differs (g_load_kmask, sched.h):
// Gs whose masks are equal — the common case, all empty — switch with no
// system call at all.
//
// An M between Gs (idle, polling) keeps a mask too, and the kernel may pick
// it for a process-directed signal; the handler then waits for a G
// (sigpend.h). So that it never takes a signal that every thread blocks
// natively (a default action would end the process; sigwait would miss it),
// an idle M blocks exactly the signals every live G blocks: a count per
// signal of the Gs that block it (g_blockers) against the number of live
// Gs (Sched::ngsys_live). The counts move only for set bits, so programs
// that block nothing pay nothing at create and exit.
// An M asleep keeps the mask it went to sleep with: when the last G that
// let a signal in blocks it, note_all_block tells interpose/signal.cpp,
// which guards the signal's default action if it is SIG_DFL (that M may
// still take it).
// Rejected: blocking everything on an idle M (a process-directed signal
// then waits until some G's M happens to run, and the netpoller could not
// be woken by one), a system call at every switch (the switch costs a
// few ns without one), and a signal to each idle M to refresh its mask,
// waited for (it broke SBCL, whose threads block signals all the time).
#include <signal.h>
#include <ucontext.h>

#include <atomic>

#include "core/base.h"
#include "core/poke.h"
#include "core/sched.h"
#include "core/sigpend.h"

namespace mnp {

constinit std::atomic<uint64_t> g_kmask_open{0};
constinit std::atomic<uint64_t> g_dfl_guarded{0};

namespace {
// Both written by every thread that changes its mask: cache lines of their
// own, apart from the start-up data every call reads (MNP_START_DATA).
alignas(64) MNP_START_DATA constinit std::atomic<int32_t> g_blockers[64];

// Signals no mask may hold back: glibc's two and the runtime's.
uint64_t never_blocked() {
  uint64_t b = (1ULL << 31) | (1ULL << 32);
  if (int ps = poke_signal_number(); ps > 0) b |= 1ULL << (ps - 1);
  return b;
}

// Blocked bits over every G (0: nothing blocked anywhere, the common case).
alignas(64) MNP_START_DATA constinit std::atomic<int64_t> g_blocked_any{0};

using AllBlockHook = void (*)(uint64_t);
MNP_START_DATA constinit AllBlockHook g_all_block_hook = nullptr;

MNP_STARTUP void count(uint64_t bits, int d) {
  if (bits) g_blocked_any.fetch_add(d * bits_set(bits), std::memory_order_relaxed);
  while (bits) {
    int b = __builtin_ctzll(bits);
    bits &= bits - 1;
    g_blockers[b].fetch_add(d, std::memory_order_relaxed);
  }
}

// Of `bits`, those every live G blocks now and some other M may still let
// in: to the hook. An M publishes what may be open before it changes its
// mask and looks at the counts again after (m_set_idle_kmask), and this
// looks at the masks after the counts moved, so either that M takes the
// new bits itself or they are seen here.
void note_all_block(uint64_t bits) {
  bits &= ~never_blocked() & ~g_dfl_guarded.load(std::memory_order_relaxed);
  if (!bits) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  int64_t n = sched.ngsys_live.load(std::memory_order_relaxed);
  uint64_t all = 0;
  for (uint64_t b = bits; b && n > 0; b &= b - 1) {
    int i = __builtin_ctzll(b);
    if (g_blockers[i].load(std::memory_order_relaxed) >= n) all |= 1ULL << i;
  }
  if (!all) return;
  G* self = tls_g;
  // The caller's own M loads the caller's mask next, unless the caller is
  // a G on its way out (g_sigmask_drop): that M keeps the ended G's mask
  // until its last switch.
  M* own = self && !self->exiting ? self->m : nullptr;
  uint64_t open = 0;
  for (M* mp = sched.allm.load(std::memory_order_acquire); mp; mp = mp->alllink)
    if (mp != own && mp->tid != 0) open |= all & ~__atomic_load_n(&mp->kmask, __ATOMIC_RELAXED);
  if (open) g_all_block_hook(open);
}

void store_view(G* gp, const sigset_t* view) {
  sigset_t v = *view;
  // As the kernel: SIGKILL and SIGSTOP cannot be blocked; nor glibc's own
  // (cleared by hand: glibc's sigdelset refuses 32 and 33 with EINVAL, and
  // runtime code must not touch errno).
  v.__val[0] &= ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)) | (1ULL << 31) | (1ULL << 32));
  gp->sigmask = v;
  gp->kmask = sigset_bits(&v);  // g_load_kmask leaves the runtime's signal out
}
}  // namespace

void m_set_kmask(M* mp, uint64_t k) {
  raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&k), 0, 8);
  mp->kmask = k;
}

MNP_STARTUP void g_sigmask_init(G* gp, const sigset_t* view) {
  store_view(gp, view);
  gp->sigwait_bits.store(0, std::memory_order_relaxed);
  gp->sigfd_mask.store(0, std::memory_order_relaxed);  // a canceled signalfd read leaves it set
  gp->in_direct.store(0, std::memory_order_relaxed);   // and a canceled direct-path call (sched.h)
  count(sigset_bits(&gp->sigmask), 1);
}

void g_sigmask_set(G* gp, const sigset_t* view) {
  uint64_t was = sigset_bits(&gp->sigmask);
  store_view(gp, view);
  uint64_t now = sigset_bits(&gp->sigmask);
  count(now & ~was, 1);
  count(was & ~now, -1);
  if (MNP_UNLIKELY(now & ~was) && g_all_block_hook) note_all_block(now & ~was);
}

sigset_t g_handler_mask_begin(G* gp, const sigset_t* base, int sig, const sigset_t* act_mask, int flags) {
  sigset_t was = gp->sigmask, during = *base;
  during.__val[0] |= sigset_bits(act_mask);
  if (!(flags & SA_NODEFER)) during.__val[0] |= 1ULL << (sig - 1);
  g_sigmask_set(gp, &during);
  return was;
}

void g_handler_mask_end(G* gp, const sigset_t& was, uint64_t uc_was, const ucontext_t* uc) {
  sigset_t after = was;
  uint64_t now = sigset_bits(&uc->uc_sigmask), changed = now ^ uc_was;
  after.__val[0] = (after.__val[0] & ~changed) | (now & changed);
  g_sigmask_set(gp, &after);
}

void uc_show_g_view(ucontext_t* uc, const sigset_t& view) {
  uint64_t open = g_kmask_open.load(std::memory_order_relaxed);
  uc->uc_sigmask.__val[0] = (uc->uc_sigmask.__val[0] & ~open) | (view.__val[0] & open);
}

void uc_hide_g_view(ucontext_t* uc) { uc->uc_sigmask.__val[0] &= ~g_kmask_open.load(std::memory_order_relaxed); }

bool g_call_mask_begin(G* gp, const sigset_t* view, CallMask* cm) {
  cm->was = gp->sigmask;
  cm->ran = gp->handlers_run;
  gp->in_call_mask = true;
  g_sigmask_set(gp, view);
  g_load_kmask(gp);  // the kernel delivers what it unblocked and has pending
  if (sigpend_any() && (sigset_bits(&cm->was) & ~sigset_bits(&gp->sigmask))) sigpend_run(nullptr, nullptr);
  return gp->handlers_run != cm->ran;
}

void g_call_mask_end(G* gp, const CallMask& cm) {
  uint64_t during = sigset_bits(&gp->sigmask);
  g_sigmask_set(gp, &cm.was);
  gp->in_call_mask = false;
  g_load_kmask(gp);
  if (sigpend_any() && (during & ~sigset_bits(&cm.was))) sigpend_run(nullptr, nullptr);
}

bool g_call_mask_hold(G* gp, const CallMask& cm) {
  // The kernel puts this mask back when the call returns (its saved mask),
  // and the G's next g_load_kmask replaces it.
  m_set_kmask(gp->m, ~never_blocked() & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))));
  return gp->handlers_run == cm.ran;
}

void g_sigmask_drop(G* gp) {
  uint64_t had = sigset_bits(&gp->sigmask);
  count(had, -1);
  // One G fewer: what it let in may now be blocked by every G left.
  if (MNP_UNLIKELY(g_blocked_any.load(std::memory_order_relaxed) != 0) && g_all_block_hook) note_all_block(~had);
}

MNP_STARTUP void set_all_block_hook(void (*hook)(uint64_t bits)) { g_all_block_hook = hook; }

bool sig_blocked_by_all_gs(int sig) {
  int64_t n = sched.ngsys_live.load(std::memory_order_relaxed);
  return n > 0 && g_blockers[sig - 1].load(std::memory_order_relaxed) >= n;
}

uint64_t idle_kmask() {
  // No G blocks anything (the common case): every M sleeps open.
  if (g_blocked_any.load(std::memory_order_relaxed) == 0) return 0;
  int64_t n = sched.ngsys_live.load(std::memory_order_relaxed);
  if (n <= 0) return 0;
  uint64_t k = 0;
  for (int b = 0; b < 64; b++)
    if (g_blockers[b].load(std::memory_order_relaxed) >= n) k |= 1ULL << b;
  return k & ~never_blocked();
}

void m_set_idle_kmask(M* mp) {
  // What may be open while the mask changes is published before the change
  // (the bits blocked both before and after), and the counts are read
  // again after that: a G whose mask change makes a signal blocked by every
  // G either sees this M open to it (note_all_block guards it) or its count
  // is seen here, before the kernel opens anything.
  uint64_t cur = mp->kmask, k = idle_kmask();
  for (;;) {
    __atomic_store_n(&mp->kmask, cur & k, __ATOMIC_RELAXED);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint64_t again = idle_kmask();
    if (again == k) break;
    k = again;
  }
  if (k != cur) m_set_kmask(mp, k);
  else mp->kmask = k;
}

MNP_STARTUP void sigmask_after_fork(G* self) {
  g_blocked_any.store(0, std::memory_order_relaxed);
  for (auto& c : g_blockers) c.store(0, std::memory_order_relaxed);
  count(sigset_bits(&self->sigmask), 1);
}

}  // namespace mnp
