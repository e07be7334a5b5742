#!/usr/bin/env bash
# SQLite (libsqlite3 through CPython's sqlite3 module) in WAL mode: 8
# threads, each its own connection, insert 500 rows each in small
# transactions (busy_timeout handles the writer lock) while 4 threads read;
# the table's totals are then checked.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=database packages=(python3) commands=(python3) fast=1
what='SQLite WAL, 8 writer + 4 reader threads'
prepare() {
  cat >t.py <<'PY'
import sqlite3, threading
db = 'mx.db'
c = sqlite3.connect(db)
c.execute('pragma journal_mode=wal')
c.execute('create table t(w int, i int, v text)')
c.commit(); c.close()
def writer(w):
    c = sqlite3.connect(db, timeout=60)
    for i in range(0, 500, 10):
        with c:
            c.executemany('insert into t values(?,?,?)', [(w, i + k, 'v%d' % ((w * 31 + i + k) % 97)) for k in range(10)])
    c.close()
seen = []
def reader():
    c = sqlite3.connect(db, timeout=60)
    last = 0
    for _ in range(100):
        n = c.execute('select count(*) from t').fetchone()[0]
        if n < last: seen.append('count went back')
        last = n
    c.close()
ts = [threading.Thread(target=writer, args=(w,)) for w in range(8)] + [threading.Thread(target=reader) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
c = sqlite3.connect(db)
print(c.execute('select count(*), sum(i), count(distinct w), sum(length(v)) from t').fetchone(), seen)
PY
}
workload() { mx_exec python3 ../t.py; }
mx_main
