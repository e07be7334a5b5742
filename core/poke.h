// core/poke.h — the runtime's signal (core/poke.cpp; docs/ARCHITECTURE.md,
// "Signals"): what the rest of the runtime and interpose/ may ask of it.
// One signal (MNP_SIGNAL, SIGURG by default) carries sysmon's pokes and the
// runtime's requests to an M's handler; the program's own instances of it
// reach the action the program set, which the runtime keeps.
#pragma once

#include <signal.h>

#include <cstdint>

namespace mnp {

// sig is the runtime's signal (MNP_SIGNAL) and its handler is installed:
// the program's own action for it is kept here, and deliveries that are
// not sysmon's are passed on to it.
bool poke_signal_is(int sig);
// sig is the runtime's signal, or will be once it is installed.
bool poke_signal_reserved(int sig);
// -1 while the runtime's signal is not installed (lazy start-up).
int poke_signal_number();
// The program asks for the runtime's signal as a queued signal (a signalfd
// or a sigwait set holds it): the runtime moves to a free real-time signal
// (none of `avoid`, none with an action) and gives the old one back to the
// program with the action it recorded. False when no signal is free (the
// runtime keeps its own, and says so in one line).
bool poke_signal_release(uint64_t avoid);
// interpose/signal.cpp: installs the program's recorded action for a signal
// the runtime gave back, as its own sigaction would.
void set_poke_rewrap_hook(void (*hook)(int, const struct sigaction*));
// Sends sysmon's poke (the runtime's signal, marked as such) to the M whose
// kernel id is tid. Nothing is sent while an exec is pending (-EAGAIN).
long send_runtime_poke(long tid);
// The same, as a request to that M's handler: SI_QUEUE from this process
// carrying `value` (kSigpendKickValue and the like).
long send_runtime_marked(long tid, int value);
// Whether a tracer is attached to the process (TracerPid in /proc), as
// sysmon last read it: preemption then signals less (sysmon.cpp,
// kTracedSliceNs).
void poke_set_traced(bool traced);
bool poke_traced();
// A G in a sigwait for sig in the kernel (on an M) is sent the sigwait kick
// (kSigwaitKickValue): a slot for the process now waits for it.
void poke_kick_sigwaiter(int sig);
// Around an exec (interpose/exec.cpp): after exec_prepare no runtime signal
// is pending for or sent to any thread until exec_abandon (a failed exec).
// exec_prepare returns false, and did nothing, in a vfork child (another
// process in this one's memory); exec_abandon then must not be called.
bool exec_prepare();
void exec_abandon();
// The program's sigaction for the runtime's signal: recorded (the old one
// returned in old), never installed.
void poke_user_action(const struct sigaction* act, struct sigaction* old);
// interpose/signal.cpp: turns the kernel's action for a signal back into
// the program's own (the trampoline it may be wrapped in).
void set_poke_unwrap_hook(void (*hook)(int, struct sigaction*));

}  // namespace mnp
