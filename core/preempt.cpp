// core/preempt.cpp — stopping a G that has run 10 ms without a scheduling
// point.
//
// sysmon marks such a G (G::preempt) and signals its M (the same signal as
// the blocked-M detection, sysmon.cpp). The handler may switch away only at
// a safe point: if the G is stopped inside libc (say, holding malloc's arena
// lock or a stdio lock) and another G on this M then needs that lock, both
// wait forever. So the interrupted PC must lie outside libc, ld.so,
// libstdc++/libgcc, the allocator, libunwind and mnpthread, and so must the
// PC of every frame a signal interrupted further up the G's stack (walked
// with libunwind from the signal context, up to the G's base). The other
// frames of those libraries are calls out to the program's code: libstdc++'s
// std::thread entry, pthread_once running std::call_once's function, qsort's
// comparator, a program handler the runtime's trampoline runs. That code may
// park or yield at any point of its own, so a switch there changes nothing
// those frames must not already allow (before that rule, std::thread
// workers that spin were never preempted and starved main at 1 P). One
// exception: dl_iterate_phdr holds the loader's write lock while it calls
// the program, and the walk itself (libunwind) calls dl_iterate_phdr, in a
// handler that cannot park: a G switched away there would leave every
// other G's walk waiting for it in the kernel, with its P. Where
// the walk fails (frames no unwinder can read, a JIT's) the mark stays: the
// G's next park or yield (sched.cpp next_local), or the return of its next
// interposed call (preempt_check), ends its time slice, and sysmon signals
// again a millisecond later.
//
// Switching inside a signal handler: the signal frame stays on the G's
// stack; before the switch the handler restores the interrupted signal mask
// (the next G must not run with everything blocked); when the G is resumed,
// on whichever M, it returns from the handler and sigreturn restores its
// registers. MNP_PREEMPT=0 turns asynchronous preemption off.
//
// libunwind comes from core/unwind.h (loaded once, RTLD_LOCAL: see there).
#include "core/preempt.h"

#include <link.h>
#include <signal.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cerrno>
#include <cstring>

#include "core/base.h"
#include "core/rtfd.h"
#include "core/sched.h"
#include "core/unwind.h"

extern "C" const char __start_mnp_gbase[] __attribute__((visibility("hidden")));
extern "C" const char __stop_mnp_gbase[] __attribute__((visibility("hidden")));
// The main G's base frame (arch/x86_64/start.S, in the shim only: null here
// in the unit tests).
extern "C" const char mnp_call_main[] __attribute__((weak, visibility("hidden")));
extern "C" const char mnp_call_main_end[] __attribute__((weak, visibility("hidden")));

namespace mnp {
namespace {

struct Range {
  uintptr_t lo, hi;
  bool libc;
};
constexpr int kMaxRanges = 64;
constinit Range g_ranges[kMaxRanges] = {};
constinit int g_nranges = 0;
constinit std::atomic<bool> g_enabled{false};    // set up and not turned off
MNP_START_DATA constinit bool g_wanted = false;  // MNP_PREEMPT
constinit std::atomic<bool> g_setup_done{false};

constinit const Unwind* g_unw = nullptr;  // set by preempt_init

bool forbidden_name(const char* n) {
  static constexpr const char* kLibs[] = {"libc.so",     "ld-linux",  "libstdc++",  "libgcc_s",   "libmnpthread",
                                          "libjemalloc", "libunwind", "linux-vdso", "libpthread", "libdl.so"};
  for (const char* l : kLibs)
    if (strstr(n, l)) return true;
  return false;
}

int collect(struct dl_phdr_info* info, size_t, void*) {
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  if (!forbidden_name(name)) return 0;
  for (int i = 0; i < info->dlpi_phnum && g_nranges < kMaxRanges; i++) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    g_ranges[g_nranges++] = {info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz,
                             strstr(name, "/libc.so") != nullptr};
  }
  return 0;
}

bool in_forbidden(uintptr_t pc) {
  for (int i = 0; i < g_nranges; i++)
    if (pc >= g_ranges[i].lo && pc < g_ranges[i].hi) return true;
  return false;
}

// pc lies in libc's code just past a `syscall` instruction (the 2 bytes
// before it are libc's code too): a system call libc made has returned.
bool after_libc_syscall(uintptr_t pc) {
  for (int i = 0; i < g_nranges; i++)
    if (g_ranges[i].libc && pc >= g_ranges[i].lo + 2 && pc < g_ranges[i].hi) return arch_is_syscall_insn(pc - 2, pc);
  return false;
}

// dl_iterate_phdr's own code (preempt_setup).
constinit Range g_phdr_iter = {};
// dl_iterate_phdr not found: every frame of a forbidden library refuses.
constinit bool g_callers_strict = false;

bool in_base(uintptr_t pc) {
  return (pc >= reinterpret_cast<uintptr_t>(__start_mnp_gbase) && pc < reinterpret_cast<uintptr_t>(__stop_mnp_gbase)) ||
         (pc >= reinterpret_cast<uintptr_t>(mnp_call_main) && pc < reinterpret_cast<uintptr_t>(mnp_call_main_end));
}

}  // namespace

MNP_STARTUP void preempt_init() { g_wanted = config().preempt; }

void preempt_setup() {
  // Called by every pthread_create: a plain load first, the locked
  // exchange only the first time.
  if (!g_wanted || g_setup_done.load(std::memory_order_acquire) ||
      g_setup_done.exchange(true, std::memory_order_acq_rel))
    return;
  // libunwind's set-up validates addresses with mincore, which a seccomp
  // filter may trap (preempt_off_under_seccomp).
  if (seccomp_filter_seen()) return;
  g_unw = unwind_get();
  if (!g_unw) {
    raw_print("libunwind.so.8 not found: asynchronous preemption is off (install libunwind8)");
    return;
  }
  // libunwind opens its address-validation pipe here; the interposed pipe2
  // recognises the caller and protects the fds (core/rtfd.h).
  g_unw->set_caching_policy(*g_unw->local_addr_space, UNW_CACHE_NONE);
  dl_iterate_phdr(collect, nullptr);
  // libc's own, not an interposer's (ASan has one). Not found: no walk
  // passes a frame of a forbidden library (as before call-outs were allowed).
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* iter = libc ? dlsym(libc, "dl_iterate_phdr") : nullptr;
  Dl_info info;
  void* entry = nullptr;
  if (iter && dladdr1(iter, &info, &entry, RTLD_DL_SYMENT) && entry) {
    auto lo = reinterpret_cast<uintptr_t>(iter);
    g_phdr_iter = {lo, lo + static_cast<const ElfW(Sym)*>(entry)->st_size, false};
  } else {
    g_callers_strict = true;
  }
  if (libc) dlclose(libc);
  g_enabled.store(true, std::memory_order_release);
}

bool preempt_in_unwinder(const void* addr) {
  const void* base = g_unw ? g_unw->base : nullptr;
  Dl_info info;
  return base && dladdr(addr, &info) && info.dli_fbase == base;
}

void preempt_unwinder_lost() {
  if (g_enabled.exchange(false))
    raw_print("the program reuses the fd of libunwind's pipe: asynchronous preemption is off from now on");
}

bool preempt_enabled() { return g_enabled.load(std::memory_order_relaxed); }

bool preempt_off_under_seccomp() {
  if (!runtime_call_refused(kSeccompSeen)) return false;
  g_enabled.store(false, std::memory_order_relaxed);  // filters are never removed
  return true;
}

// A walk costs about 0.5 us a frame on the project's VM (libunwind's
// sigprocmask calls answered without a system call: tls_unwinding); it
// runs on the preempted G's own time, once per slice that others wait
// for. Deeper than this, a G is preempted only at its scheduling points.
constexpr int kMaxWalkFrames = 1 << 16;

Walk preempt_walk(const ucontext_t* uc, RetHook* hook) {
  uintptr_t pc = arch_uc_pc(uc);
  // Stopped in libc just after a system call of its own returned: safe at
  // that function's return, if its caller is (checked at the first step).
  bool at_return = false;
  if (in_forbidden(pc)) {
    if (!hook || !after_libc_syscall(pc)) return Walk::kUnsafe;
    at_return = true;
  }
  unw_cursor_t cur;
  if (g_unw->init_local2(&cur, reinterpret_cast<unw_context_t*>(const_cast<ucontext_t*>(uc)), UNW_INIT_SIGNAL_FRAME) <
      0)
    return Walk::kUnsafe;
  for (int depth = 0; depth < kMaxWalkFrames; depth++) {
    // The frame above a signal frame was stopped anywhere, as the first one.
    // libunwind 1.6 answers "signal frame" for the frame it stepped to
    // through the restorer (the interrupted one), others for the restorer's
    // own: either answer, before or after the step, makes the frame reached
    // one to check strictly (at worst its caller is checked so too).
    bool interrupted = g_unw->is_signal_frame(&cur) > 0;
    int r = g_unw->step(&cur);
    if (r <= 0) {
      // No step past this frame, and no G's base met. In a library's code
      // (a makecontext coroutine's stack ends at glibc's __start_context):
      // the stack's end, callers unknown, so no. Elsewhere: a frame no
      // unwinder can read (no unwind information: a JIT's code).
      unw_word_t at;
      g_unw->get_reg(&cur, UNW_REG_IP, &at);
      return in_forbidden(at) ? Walk::kUnsafe : Walk::kUnreadable;
    }
    interrupted = interrupted || g_unw->is_signal_frame(&cur) > 0;
    unw_word_t ip;
    g_unw->get_reg(&cur, UNW_REG_IP, &ip);
    if (at_return) {
      // The caller's frame: program code, and its return address where
      // the call put it, just below the caller's stack pointer (the libc
      // function's canonical frame address), at the top of the stack: the
      // function keeps nothing on the stack, so from its system call on it
      // can only return (or jump to a tail, __syscall_error, that returns
      // for it); it calls nothing that could unwind through it, as a
      // cancellation point's wrapper calls glibc's cancellation check.
      at_return = false;
      unw_word_t sp;
      g_unw->get_reg(&cur, UNW_REG_SP, &sp);
      auto* slot = reinterpret_cast<uintptr_t*>(sp - sizeof(uintptr_t));
      if (interrupted || in_forbidden(ip) || reinterpret_cast<uintptr_t>(slot) != arch_uc_sp(uc) || *slot != ip)
        return Walk::kUnsafe;
      hook->slot = slot;
      hook->ra = ip;
    }
    if (in_base(ip)) return hook && hook->slot ? Walk::kAtReturn : Walk::kSafe;
    if ((interrupted || g_callers_strict) && in_forbidden(ip)) return Walk::kUnsafe;
    if (ip >= g_phdr_iter.lo && ip < g_phdr_iter.hi) return Walk::kUnsafe;
  }
  return Walk::kUnsafe;
}

void preempt_check() {
  G* g = get_user_g();
  if (!g || MNP_LIKELY(g->preempt.load(std::memory_order_relaxed) == 0)) return;
  // Not in a program handler (it may run on an alternate stack, or have
  // interrupted libc or the loader: the poke handler's walk would refuse),
  // not inside a wrapped call, not where runtime code holds the M, not
  // while signals sent to this G go to its M (a direct-path call, a
  // sigwait: their flags are cleared after this point), and not while a
  // call's signal mask is the G's (ppoll, pselect, epoll_pwait: the check
  // comes after the mask is put back, with_wait_mask).
  if (g->in_handler != 0 || g->syscall_depth != 0 || g->m->locks != 0 || g->mhold != 0 || g->in_call_mask ||
      g->in_direct.load(std::memory_order_relaxed) != 0 || g->sigwait_bits.load(std::memory_order_relaxed) != 0)
    return;
  if (MNP_UNLIKELY(g->ks_rt.load(std::memory_order_relaxed))) {
    // A real-time G's slice is its bandwidth: over, it goes behind the
    // ordinary Gs as where a signal stops it (a yield would queue it first
    // again, among the real-time Gs), as sched_yield does.
    ensure_p(g);  // may park it: resumed, its mark is gone (execute) and its slice new
    if (g->preempt.load(std::memory_order_relaxed) != 0) preempt_switch();
    return;
  }
  yield(true);  // takes the mark, and a P first if the G lost its own
}

namespace {
// How far above a stack pointer a pending hook's slot is taken to be on
// the same stack (and is read); beyond, or below it, the record is stale.
constexpr uintptr_t kHookReach = 1 << 20;
bool hook_slot_live(const G* g, uintptr_t sp) {
  auto at = reinterpret_cast<uintptr_t>(g->ret_hook_slot);
  return at >= sp && at - sp < kHookReach && *g->ret_hook_slot == reinterpret_cast<uintptr_t>(&mnp_ret_hook_stub);
}
}  // namespace

bool ret_hook_install(G* g, const RetHook& hook, const ucontext_t* uc) {
  uintptr_t sp = arch_uc_sp(uc);
  auto stub = reinterpret_cast<uintptr_t>(&mnp_ret_hook_stub);
  if (g->ret_hook_ra != 0) {
    // One at a time. Still to come if its slot, just above this stack
    // pointer, still sends a return to the stub; otherwise the frame was
    // left another way (a longjmp past it, a swapcontext to another stack,
    // which may be gone: not read then) and the record is stale.
    if (hook_slot_live(g, sp)) return false;
    g->ret_hook_ra = 0;
    g->ret_hook_slot = nullptr;
  }
  // On the G's own stack only (not a coroutine's, not an alternate signal
  // stack), where the slot lives as long as the G.
  auto lo = reinterpret_cast<uintptr_t>(g->stack_lo);
  if (lo != 0 && (sp < lo || sp >= lo + g->stack_size)) return false;
  g->ret_hook_ra = hook.ra;
  g->ret_hook_slot = hook.slot;
  *hook.slot = stub;
  return true;
}

void ret_hook_drop(G* g, const ucontext_t* uc) {
  if (MNP_LIKELY(g->ret_hook_ra == 0)) return;
  if (hook_slot_live(g, arch_uc_sp(uc))) *g->ret_hook_slot = g->ret_hook_ra;
  g->ret_hook_ra = 0;
  g->ret_hook_slot = nullptr;
}

}  // namespace mnp

// The stub's calls (arch/x86_64/rethook.S), on the G that returned into it.
extern "C" MNP_HIDDEN uintptr_t mnp_ret_hook_take() {
  mnp::G* g = mnp::get_user_g();
  uintptr_t ra = g ? g->ret_hook_ra : 0;
  if (ra == 0) mnp::fatal("return hook reached without a return address");
  g->ret_hook_ra = 0;
  g->ret_hook_slot = nullptr;
  return ra;
}

extern "C" MNP_HIDDEN void mnp_ret_hook_yield() {
  int saved = errno;  // the libc function's, for its caller
  mnp::preempt_check();
  errno = saved;
}
