// arch/x86_64/machine.h — the instructions the runtime uses directly:
// system calls, the spin-wait hint and the cycle counter; and the one
// register the runtime reads from a signal's context, the interrupted PC.
//
// raw_syscall* never touch errno: they return -errno, as the kernel does.
// Runtime code runs on a G's TLS more often than not, and the libc
// syscall() would both set errno and bind to the shim's own interposer.
#pragma once

#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>

#include <cstdint>

namespace mnp {

inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}
inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
  return raw_syscall6(n, a, b, c, d, 0, 0);
}

// In spin-wait loops.
inline void cpu_relax() { __builtin_ia32_pause(); }

// A cheap, monotonic-enough cycle count (G dump: time waiting).
inline uint64_t arch_cycles() { return __builtin_ia32_rdtsc(); }

// The program counter where the signal whose handler got uc interrupted.
inline uintptr_t arch_uc_pc(const ucontext_t* uc) { return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]); }
// The stack pointer there.
inline uintptr_t arch_uc_sp(const ucontext_t* uc) { return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]); }

// Whether the two bytes at `at` are a `syscall` instruction (0f 05). The
// page of the interrupted PC is mapped (the thread ran there); a byte on
// the next or the previous page may not be (a JIT's code buffer starts on
// a page whose predecessor is unmapped: qemu's did, and reading it crashed
// the handler), so a pair that crosses a page is read by the kernel,
// which answers EFAULT for a hole.
inline bool arch_is_syscall_insn(uintptr_t at, uintptr_t pc) {
  constexpr uintptr_t kPage = 4096;
  if ((at & ~(kPage - 1)) == (pc & ~(kPage - 1)) && ((at + 1) & ~(kPage - 1)) == (pc & ~(kPage - 1))) {
    auto* code = reinterpret_cast<const unsigned char*>(at);
    return code[0] == 0x0f && code[1] == 0x05;
  }
  unsigned char b[2];
  struct iovec local = {b, 2}, remote = {reinterpret_cast<void*>(at), 2};
  long pid = raw_syscall(SYS_getpid);
  return raw_syscall6(SYS_process_vm_readv, pid, reinterpret_cast<long>(&local), 1, reinterpret_cast<long>(&remote), 1,
                      0) == 2 &&
         b[0] == 0x0f && b[1] == 0x05;
}

// The PC is at a `syscall` instruction (0f 05) not yet executed: the
// thread was about to make a system call, or the kernel is restarting one
// the signal (or an earlier one taken by another thread) interrupted.
inline bool arch_uc_at_syscall(const ucontext_t* uc) {
  uintptr_t pc = arch_uc_pc(uc);
  return arch_is_syscall_insn(pc, pc);
}

// The signal interrupted a system call: the PC is at the `syscall`
// instruction (the kernel restarts it on return) or just after one that
// returned -EINTR.
inline bool arch_uc_in_syscall(const ucontext_t* uc) {
  uintptr_t pc = arch_uc_pc(uc);
  long ret = static_cast<long>(uc->uc_mcontext.gregs[REG_RAX]);
  return arch_uc_at_syscall(uc) || (ret == -EINTR && arch_is_syscall_insn(pc - 2, pc));
}

// With the PC at a `syscall` instruction (arch_uc_at_syscall): the handler
// returns past it, as if the call had returned ret (a -errno).
inline void arch_uc_skip_syscall(ucontext_t* uc, long ret) {
  uc->uc_mcontext.gregs[REG_RAX] = ret;
  uc->uc_mcontext.gregs[REG_RIP] += 2;
}

}  // namespace mnp
