#!/usr/bin/env bash
# Node.js worker_threads: 4 workers (each its own V8 isolate and libuv loop)
# compute over a SharedArrayBuffer with Atomics, plus 64 crypto.pbkdf2 calls
# on libuv's thread pool (UV_THREADPOOL_SIZE=4).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(nodejs) commands=(node)
what='node worker_threads x4 + libuv pool (pbkdf2 x64)'
prepare() {
  cat >t.js <<'JS'
const { Worker, isMainThread, workerData, parentPort } = require('worker_threads');
const crypto = require('crypto');
if (isMainThread) {
  const sab = new SharedArrayBuffer(4 * 8);
  const arr = new Int32Array(sab);
  let done = 0;
  const results = [];
  for (let w = 0; w < 4; w++) {
    const wk = new Worker(__filename, { workerData: { w, sab } });
    wk.on('message', (m) => { results[w] = m; if (++done === 4) finish(); });
  }
  let pending = 64; const keys = [];
  for (let i = 0; i < 64; i++) {
    crypto.pbkdf2('secret' + i, 'salt', 2000, 16, 'sha256', (e, k) => {
      keys[i] = k.toString('hex'); pending--; if (pending === 0 && done === 4) finish();
    });
  }
  let printed = false;
  function finish() {
    if (printed || pending !== 0 || done !== 4) return;
    printed = true;
    console.log('workers', results.join(' '));
    console.log('atomics', Array.from(arr).join(' '));
    console.log('pbkdf2', crypto.createHash('sha256').update(keys.join('')).digest('hex'));
  }
} else {
  const arr = new Int32Array(workerData.sab);
  let s = 0;
  for (let i = 0; i < 2e6; i++) { s = (s + i * (workerData.w + 1)) % 1000003; if (i % 1000 === 0) Atomics.add(arr, i % 8, 1); }
  parentPort.postMessage(s);
}
JS
}
workload() { UV_THREADPOOL_SIZE=4 mx_exec node ../t.js; }
mx_main
