#!/usr/bin/env python3
"""py_sig_lock — a signal interrupts CPython's blocking lock acquire and
join in the main thread (issue 8).

CPython's lock.acquire(timeout=...) is sem_clockwait, and acquire() with no
timeout is sem_wait; both retry on EINTR after running the Python-level
signal handlers. Here a timer thread kill()s the process with SIGUSR1,
whose Python handler raises KeyboardInterrupt, while main waits 30 s for a
lock (then for a thread's join, which is a lock acquire too). Natively the
handler runs on the main thread and its futex wait ends with EINTR at once.
Under the shim the wait went on: the acquire waited out its whole timeout.
"Early" allows 10 s: a hang detector, not a timing test.
"""
import ctypes
import os
import signal
import sys
import threading
import time

shim = hasattr(ctypes.CDLL(None), "mnp_version")
print(f"MNP-CHECK shim={int(shim)}", file=sys.stderr)
signal.alarm(60)


def on_usr1(sig, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGUSR1, on_usr1)


def kill_soon():
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGUSR1)).start()


for what in ("acquire(timeout=30)", "acquire()", "join"):
    lock = threading.Lock()
    lock.acquire()
    done = threading.Event()
    t = threading.Thread(target=lambda: done.wait(30))
    t.start()
    kill_soon()
    t0 = time.monotonic()
    try:
        if what == "join":
            t.join()
        elif what == "acquire()":
            lock.acquire()
        else:
            lock.acquire(timeout=30)
        result = "returned"
    except KeyboardInterrupt:
        result = "interrupted"
    early = time.monotonic() - t0 < 10
    done.set()
    t.join()
    print(f"{what}: {result}, early {early}")
