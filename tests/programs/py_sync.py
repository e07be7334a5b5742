"""py_sync.py — CPython's threading synchronisation under the runtime: a
queue.Queue pipeline (200 producer and consumer threads), Condition-based
hand-offs, Semaphore, Event, Barrier and a concurrent.futures thread pool.
Every result is computed independently and printed after the joins, so the
output is identical natively and under the shim; a lost wake-up hangs (the
runner's timeout), a wrong count prints a different number."""
import concurrent.futures
import ctypes
import queue
import sys
import threading

try:
    shim = ctypes.CDLL(None).mnp_version is not None
except AttributeError:
    shim = False
print("MNP-CHECK shim=%d" % (1 if shim else 0), file=sys.stderr)

# Queue pipeline: 100 producers, 100 consumers.
q = queue.Queue(maxsize=64)
totals = [0] * 100
def produce(i):
    for k in range(200):
        q.put(i * 1000 + k)
def consume(i):
    s = 0
    for _ in range(200):
        s += q.get()
        q.task_done()
    totals[i] = s
ts = [threading.Thread(target=produce, args=(i,)) for i in range(100)]
ts += [threading.Thread(target=consume, args=(i,)) for i in range(100)]
for t in ts: t.start()
for t in ts: t.join()
q.join()
expected = sum(i * 1000 * 200 + sum(range(200)) for i in range(100))
print("queue: items=%d sum_ok=%s" % (100 * 200, sum(totals) == expected))

# Condition: strict turn-taking between 4 threads, 500 turns each.
cond = threading.Condition()
turn = [0]
order = []
def player(me):
    for _ in range(500):
        with cond:
            cond.wait_for(lambda: turn[0] % 4 == me)
            order.append(me)
            turn[0] += 1
            cond.notify_all()
ps = [threading.Thread(target=player, args=(i,)) for i in range(4)]
for p in ps: p.start()
for p in ps: p.join()
print("condition: turns=%d in_order=%s" % (len(order), order == [i % 4 for i in range(2000)]))

# Semaphore bounding concurrency; Event; Barrier.
sem = threading.Semaphore(3)
inside = [0]
peak = [0]
guard = threading.Lock()
go = threading.Event()
bar = threading.Barrier(20)
def bounded():
    go.wait()
    for _ in range(20):
        with sem:
            with guard:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            with guard:
                inside[0] -= 1
    bar.wait()
ws = [threading.Thread(target=bounded) for _ in range(20)]
for w in ws: w.start()
go.set()
for w in ws: w.join()
print("semaphore: peak_within_limit=%s barrier_broken=%s" % (peak[0] <= 3, bar.broken))

# concurrent.futures.
with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
    results = list(ex.map(lambda n: sum(range(n)), range(1000)))
print("futures: results=%d sum=%d" % (len(results), sum(results)))
