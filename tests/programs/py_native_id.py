#!/usr/bin/env python3
"""py_native_id — threading.get_native_id() is per thread (issue 9, item 1).

CPython's get_native_id() is syscall(SYS_gettid). 10 threads, all alive at
once (a barrier), each store their id: the 10 ids are distinct, none is the
pid, and the main thread's is os.getpid(). test_threading's
test_various_ops checks the same.
"""
import ctypes
import os
import sys
import threading

shim = hasattr(ctypes.CDLL(None), "mnp_version")
print(f"MNP-CHECK shim={int(shim)}", file=sys.stderr)

THREADS = 10
ids = [None] * THREADS
barrier = threading.Barrier(THREADS)


def worker(i):
    ids[i] = threading.get_native_id()
    barrier.wait()


threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()

print("distinct native ids:", len(set(ids)))
print("none is the pid:", os.getpid() not in ids)
print("main's is the pid:", threading.get_native_id() == os.getpid())
print("main_thread().native_id is the pid:", threading.main_thread().native_id == os.getpid())
