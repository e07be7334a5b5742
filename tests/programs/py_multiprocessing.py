"""py_multiprocessing.py — CPython's multiprocessing across processes under
the runtime (issue 9): a multiprocessing.Lock (a process-shared POSIX
semaphore from sem_open) held by the parent while a forked child blocks on
it, then released; a multiprocessing.Semaphore ping-pong between parent and
child; and a concurrent.futures.ProcessPoolExecutor map of 1,000 items with
the fork, spawn and forkserver start methods (result queues and call queues
are pipes guarded by such semaphores). Every child runs under the shim too
(LD_PRELOAD is inherited). Before the fix the child's acquire parked in its
own process's wait table and never saw the parent's release: a hang (the
runner's timeout)."""
import concurrent.futures
import ctypes
import multiprocessing as mp
import sys
import time

try:
    shim = ctypes.CDLL(None).mnp_version is not None
except AttributeError:
    shim = False


def locker(lock, started, done):
    started.release()
    with lock:
        done.value = 1


def pong(ping, pongsem, rounds):
    for _ in range(rounds):
        ping.acquire()
        pongsem.release()


def square(x):
    return x * x


def main():
    print("MNP-CHECK shim=%d" % (1 if shim else 0), file=sys.stderr)
    ctx = mp.get_context("fork")

    # The child blocks on a lock the parent holds; the parent releases it.
    lock = ctx.Lock()
    started = ctx.Semaphore(0)
    done = ctx.Value("i", 0)
    lock.acquire()
    p = ctx.Process(target=locker, args=(lock, started, done))
    p.start()
    started.acquire()
    time.sleep(0.2)  # let the child reach the blocking acquire
    held = done.value
    t0 = time.monotonic()
    lock.release()
    p.join(30)
    print("lock: blocked_while_held=%s acquired=%s exitcode=%s" % (held == 0, done.value == 1, p.exitcode),
          flush=True)
    print("lock: release_to_exit_s=%.2f" % (time.monotonic() - t0), file=sys.stderr)

    # Semaphore ping-pong between two processes.
    ping, pongsem = ctx.Semaphore(0), ctx.Semaphore(0)
    p = ctx.Process(target=pong, args=(ping, pongsem, 500))
    p.start()
    n = 0
    for _ in range(500):
        ping.release()
        pongsem.acquire()
        n += 1
    p.join(30)
    print("semaphore: rounds=%d exitcode=%s" % (n, p.exitcode), flush=True)

    for method in ("fork", "spawn", "forkserver"):
        t0 = time.monotonic()
        with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context(method)) as ex:
            results = list(ex.map(square, range(1000)))
        print("pool %s: results=%d sum=%d" % (method, len(results), sum(results)), flush=True)
        print("pool %s: %.2f s" % (method, time.monotonic() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
