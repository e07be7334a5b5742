#!/usr/bin/env bash
# CPython threading: 8 threads hash 4 MiB each (hashlib drops the GIL), a
# producer/consumer pair over queue.Queue (20,000 items), and 200 short-lived
# threads bumping a Lock-protected counter; results printed in order.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(python3) commands=(python3) fast=1
what='CPython threading: hashlib x8, Queue 20k, 200 threads'
prepare() {
  cat >t.py <<'PY'
import hashlib, queue, threading
blob = bytes(range(256)) * (4 << 12)
res = [None] * 8
def h(i):
    d = hashlib.sha256()
    for _ in range(4):
        d.update(blob + bytes([i]))
    res[i] = d.hexdigest()[:16]
ts = [threading.Thread(target=h, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(*res)
q = queue.Queue(maxsize=64)
total = [0]
def prod():
    for i in range(20000): q.put(i)
    q.put(None)
def cons():
    while (x := q.get()) is not None: total[0] += x
a, b = threading.Thread(target=prod), threading.Thread(target=cons)
a.start(); b.start(); a.join(); b.join()
print("queue sum", total[0])
lock, n = threading.Lock(), [0]
def bump():
    for _ in range(100):
        with lock: n[0] += 1
ts = [threading.Thread(target=bump) for _ in range(200)]
for t in ts: t.start()
for t in ts: t.join()
print("counter", n[0], "threads alive", threading.active_count())
PY
}
workload() { mx_exec python3 ../t.py; }
mx_main
