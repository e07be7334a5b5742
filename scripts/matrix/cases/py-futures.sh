#!/usr/bin/env bash
# CPython concurrent.futures: a ThreadPoolExecutor of 16 workers maps 600
# tasks (zlib compression, which drops the GIL, plus a sleep(0)), and
# as_completed over 200 futures; results printed in submission order.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(python3) commands=(python3) fast=1
what='concurrent.futures ThreadPoolExecutor(16), 800 tasks'
prepare() {
  cat >t.py <<'PY'
import concurrent.futures as cf, time, zlib
data = [bytes((i * 7 + k) % 251 for k in range(20000)) for i in range(32)]
def task(i):
    time.sleep(0)
    return zlib.crc32(zlib.compress(data[i % 32], 6)) ^ i
with cf.ThreadPoolExecutor(max_workers=16) as ex:
    r = list(ex.map(task, range(600)))
    print("map", len(r), sum(r) % 1000003)
    fs = {ex.submit(task, i): i for i in range(200)}
    got = sorted((fs[f], f.result()) for f in cf.as_completed(fs))
    print("as_completed", len(got), sum(v for _, v in got) % 1000003)
PY
}
workload() { mx_exec python3 ../t.py; }
mx_main
