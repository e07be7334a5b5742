#!/usr/bin/env bash
# Debian's cargo (/usr/bin, not a rustup one earlier in PATH): cargo build
# --release --offline -j 4 of a workspace of 6 crates with no
# external dependencies (cargo's job queue threads and jobserver, rustc's own
# threads), then the program runs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=build packages=(cargo rustc) commands=(cargo rustc) MX_TREE=1
what='cargo build --release -j4, 6 crates'
prepare() {
  mkdir -p ws && cd ws || return 1
  local members='' i
  for i in 1 2 3 4 5; do
    members+="\"c$i\", "
    mkdir -p "c$i/src"
    printf '[package]\nname = "c%s"\nversion = "0.1.0"\nedition = "2021"\n' "$i" >"c$i/Cargo.toml"
    cat >"c$i/src/lib.rs" <<R
pub fn work(n: u64) -> u64 {
    (0..n).map(|k| k.wrapping_mul(0x9e3779b97f4a7c15 ^ $i).rotate_left($i)).fold(0, |a, b| a ^ b)
}
R
  done
  mkdir -p app/src
  { printf '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n[dependencies]\n'
    for i in 1 2 3 4 5; do printf 'c%s = { path = "../c%s" }\n' "$i" "$i"; done; } >app/Cargo.toml
  cat >app/src/main.rs <<'R'
use std::thread;
fn main() {
    let hs: Vec<_> = (0..4u64).map(|t| thread::spawn(move || {
        c1::work(100000 + t) ^ c2::work(t) ^ c3::work(7 * t) ^ c4::work(99) ^ c5::work(t + 1)
    })).collect();
    for (i, h) in hs.into_iter().enumerate() { println!("{} {}", i, h.join().unwrap()); }
}
R
  printf '[workspace]\nmembers = [%s"app"]\nresolver = "2"\n' "$members" >Cargo.toml
}
workload() {
  cp -a ../ws . && cd ws || return 1
  PATH=/usr/bin:$PATH CARGO_HOME=$PWD/.cargo mx_exec /usr/bin/cargo build -q --release --offline -j 4 >build.log 2>&1 ||
    { cat build.log >&2; return 1; }
  ./target/release/app
}
mx_main
