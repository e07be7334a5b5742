//! rust_sync — Rust's std synchronization on top of pthreads (thread spawn)
//! and raw futex syscalls (Mutex, Condvar, RwLock, park, channels).
//!
//! Covers: Mutex<u64> counter (16 threads x 20,000); Condvar bounded queue
//! (4 producers, 4 consumers, 40,000 items, checksum); RwLock
//! readers/writers invariants; mpsc channel from 8 senders (sum and count)
//! plus a sync_channel(0) rendezvous; Barrier with exactly one leader per
//! generation over 200 generations; thread::park/unpark hand-off 5,000 times;
//! thread::scope borrowing a local slice.
//!
//! Failure: a wrong count or checksum, a violated invariant (printed, exit
//! status 1), or a hang (a lost wake-up).  MNP-CHECK shim reports whether
//! libmnpthread is loaded (looked up with dlsym, as mnp_check.h does).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex, RwLock};
use std::thread;

extern "C" {
    fn dlsym(handle: *mut std::ffi::c_void, symbol: *const std::ffi::c_char) -> *mut std::ffi::c_void;
}

fn shim_loaded() -> bool {
    // RTLD_DEFAULT is ((void*)0) on glibc.
    unsafe { !dlsym(std::ptr::null_mut(), b"mnp_version\0".as_ptr() as *const _).is_null() }
}

static FAILURES: AtomicI32 = AtomicI32::new(0);

fn check(ok: bool, what: &str) {
    if !ok {
        println!("FAIL {}", what);
        FAILURES.fetch_add(1, Ordering::SeqCst);
    }
}

fn test_mutex() {
    let m = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..16)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..20000 {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let v = *m.lock().unwrap();
    println!("mutex: counter={}", v);
    check(v == 16 * 20000, "mutex");
}

fn test_condvar() {
    const ITEMS: i64 = 40000;
    let state = Arc::new((Mutex::new(VecDeque::<i64>::new()), Condvar::new(), Condvar::new()));
    let sum = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..4i64 {
        let st = state.clone();
        producers.push(thread::spawn(move || {
            let (m, not_empty, not_full) = &*st;
            let mut v = p;
            while v < ITEMS {
                let mut q = not_full.wait_while(m.lock().unwrap(), |q| q.len() >= 32).unwrap();
                q.push_back(v);
                not_empty.notify_one();
                v += 4;
            }
        }));
    }
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let (st, sum, count) = (state.clone(), sum.clone(), count.clone());
        consumers.push(thread::spawn(move || {
            let (m, not_empty, not_full) = &*st;
            loop {
                let mut q = not_empty.wait_while(m.lock().unwrap(), |q| q.is_empty()).unwrap();
                let v = q.pop_front().unwrap();
                not_full.notify_one();
                drop(q);
                if v < 0 {
                    return;
                }
                sum.fetch_add((v as u64) * 3 + 1, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in producers {
        h.join().unwrap();
    }
    {
        let (m, not_empty, _) = &*state;
        let mut q = m.lock().unwrap();
        for _ in 0..4 {
            q.push_back(-1);
        }
        not_empty.notify_all();
    }
    for h in consumers {
        h.join().unwrap();
    }
    let expect: u64 = (0..ITEMS as u64).map(|v| v * 3 + 1).sum();
    let (s, c) = (sum.load(Ordering::SeqCst), count.load(Ordering::SeqCst));
    println!("condvar: consumed={} checksum_ok={}", c, s == expect);
    check(c == ITEMS as u64 && s == expect, "condvar");
}

fn test_rwlock() {
    let lock = Arc::new(RwLock::new([0u64; 8]));
    let readers = Arc::new(AtomicI32::new(0));
    let writers = Arc::new(AtomicI32::new(0));
    let violations = Arc::new(AtomicI32::new(0));
    let mut hs = Vec::new();
    for _ in 0..4 {
        let (l, r, w, v) = (lock.clone(), readers.clone(), writers.clone(), violations.clone());
        hs.push(thread::spawn(move || {
            for _ in 0..2000 {
                let mut g = l.write().unwrap();
                if w.fetch_add(1, Ordering::SeqCst) != 0 || r.load(Ordering::SeqCst) != 0 {
                    v.fetch_add(1, Ordering::SeqCst);
                }
                let next = g[0] + 1;
                for s in g.iter_mut() {
                    *s = next;
                }
                w.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    for _ in 0..8 {
        let (l, r, w, v) = (lock.clone(), readers.clone(), writers.clone(), violations.clone());
        hs.push(thread::spawn(move || {
            for _ in 0..4000 {
                let g = l.read().unwrap();
                r.fetch_add(1, Ordering::SeqCst);
                if w.load(Ordering::SeqCst) != 0 || g.iter().any(|&x| x != g[0]) {
                    v.fetch_add(1, Ordering::SeqCst);
                }
                r.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let fin = lock.read().unwrap()[0];
    let try_write_vs_reader = {
        let _g = lock.read().unwrap();
        let l = lock.clone();
        thread::spawn(move || l.try_write().is_err()).join().unwrap()
    };
    let viol = violations.load(Ordering::SeqCst);
    println!("rwlock: final={} violations={} try_write_vs_reader_fails={}", fin, viol, try_write_vs_reader);
    check(fin == 8000 && viol == 0 && try_write_vs_reader, "rwlock");
}

fn test_channels() {
    let (tx, rx) = mpsc::channel::<u64>();
    let mut hs = Vec::new();
    for s in 0..8u64 {
        let tx = tx.clone();
        hs.push(thread::spawn(move || {
            for i in 0..5000u64 {
                tx.send(s * 5000 + i).unwrap();
            }
        }));
    }
    drop(tx);
    let (mut n, mut sum) = (0u64, 0u64);
    for v in rx {
        n += 1;
        sum += v;
    }
    for h in hs {
        h.join().unwrap();
    }
    let expect: u64 = (0..40000u64).sum();
    // Rendezvous channel: every send blocks until received.
    let (stx, srx) = mpsc::sync_channel::<u32>(0);
    let h = thread::spawn(move || (0..1000u32).map(|_| srx.recv().unwrap()).sum::<u32>());
    for i in 0..1000u32 {
        stx.send(i).unwrap();
    }
    let rsum = h.join().unwrap();
    println!("mpsc: received={} sum_ok={} sync_channel_sum={}", n, sum == expect, rsum);
    check(n == 40000 && sum == expect && rsum == 499500, "mpsc");
}

fn test_barrier() {
    const THREADS: usize = 8;
    const GENS: usize = 200;
    let b = Arc::new(Barrier::new(THREADS));
    let leaders: Arc<Vec<AtomicI32>> = Arc::new((0..GENS).map(|_| AtomicI32::new(0)).collect());
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (b, leaders) = (b.clone(), leaders.clone());
            thread::spawn(move || {
                for g in 0..GENS {
                    if b.wait().is_leader() {
                        leaders[g].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let bad = leaders.iter().filter(|l| l.load(Ordering::SeqCst) != 1).count();
    println!("barrier: generations={} bad_generations={}", GENS, bad);
    check(bad == 0, "barrier");
}

fn test_park() {
    const ROUNDS: u32 = 5000;
    let flag = Arc::new(AtomicBool::new(false)); // true: B's turn
    let main_thread = thread::current();
    let f = flag.clone();
    let b = thread::spawn(move || {
        let mut n = 0u32;
        for _ in 0..ROUNDS {
            while !f.load(Ordering::Acquire) {
                thread::park();
            }
            n += 1;
            f.store(false, Ordering::Release);
            main_thread.unpark();
        }
        n
    });
    let mut a = 0u32;
    for _ in 0..ROUNDS {
        flag.store(true, Ordering::Release);
        b.thread().unpark();
        while flag.load(Ordering::Acquire) {
            thread::park();
        }
        a += 1;
    }
    let bn = b.join().unwrap();
    println!("park: a={} b={}", a, bn);
    check(a == ROUNDS && bn == ROUNDS, "park/unpark");
}

fn test_scope() {
    let data: Vec<u64> = (1..=100000).collect();
    let mut partial = [0u64; 8];
    thread::scope(|s| {
        for (i, out) in partial.iter_mut().enumerate() {
            let chunk = &data[i * 12500..(i + 1) * 12500];
            s.spawn(move || *out = chunk.iter().sum());
        }
    });
    let total: u64 = partial.iter().sum();
    println!("scope: total={}", total);
    check(total == 100000 * 100001 / 2, "scope");
}

fn main() {
    eprintln!("MNP-CHECK shim={}", shim_loaded() as i32);
    test_mutex();
    test_condvar();
    test_rwlock();
    test_channels();
    test_barrier();
    test_park();
    test_scope();
    let f = FAILURES.load(Ordering::SeqCst);
    println!("rust_sync: {}", if f == 0 { "ok" } else { "FAILED" });
    std::process::exit(if f == 0 { 0 } else { 1 });
}
