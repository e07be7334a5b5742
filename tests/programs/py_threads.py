#!/usr/bin/env python3
"""py_threads — an unmodified CPython with 200 threading.Thread.

Each thread hashes a chain seeded by its index, counts primes in a range,
keeps a value in threading.local and bumps a shared counter under a
threading.Lock; results are stored by index and printed after all joins.
CPython's GIL and Lock are built on pthread mutexes, condition variables and
semaphores, so under the shim this needs the synchronisation primitives of a
later issue; it still belongs in the acceptance list.

Fails when a thread is lost, a result differs, the counter is wrong, the
interpreter crashes, or it hangs (runner timeout).
"""
import ctypes
import hashlib
import sys
import threading

THREADS = 200
ROUNDS = 200
INCREMENTS = 100

results = [None] * THREADS
local = threading.local()
counter = 0
counter_lock = threading.Lock()
kthreads = [0] * THREADS


def kernel_threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def primes_below(n):
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, n, i)))
    return sum(sieve)


def work(index):
    global counter
    local.index = index
    digest = hashlib.sha256(str(index).encode()).digest()
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    primes = primes_below(1000 + 10 * index)
    for _ in range(INCREMENTS):
        with counter_lock:
            counter += 1
    kthreads[index] = kernel_threads()
    results[index] = (digest.hex()[:16], primes, local.index == index)


def main():
    shim = hasattr(ctypes.CDLL(None), "mnp_version")
    print(f"MNP-CHECK shim={int(shim)}", file=sys.stderr)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sum(1 for r in results if r is not None)
    local_ok = all(r is not None and r[2] for r in results)
    combined = hashlib.sha256(repr(results).encode()).hexdigest()
    print(f"MNP-CHECK kthreads_max={max(kthreads)}", file=sys.stderr)
    print(f"py_threads: threads={THREADS} done={done} local_ok={local_ok}")
    print(f"py_threads: counter={counter} expected={THREADS * INCREMENTS}")
    print(f"py_threads: primes_total={sum(r[1] for r in results if r)}")
    print(f"py_threads: combined={combined}")
    return 0 if done == THREADS and local_ok and counter == THREADS * INCREMENTS else 1


if __name__ == "__main__":
    raise SystemExit(main())
