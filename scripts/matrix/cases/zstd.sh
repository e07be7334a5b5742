#!/usr/bin/env bash
# zstd -T2: multi-threaded compression (worker pool) of 16 MiB of text at
# level 9, then decompression; the stream is deterministic for a given -T.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(zstd) commands=(zstd) fast=1
what='zstd -T2 -9, 16 MiB text'
prepare() { mx_gen_text input 16; }
workload() {
  mx_exec zstd -q -T2 -9 -c ../input >out.zst || return 1
  mx_exec zstd -q -T2 -dc out.zst >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.zst
}
mx_main
