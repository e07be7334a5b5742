#!/usr/bin/env bash
# xz -T2: multi-threaded compression of 8 MiB of text, then decompression;
# the round trip and the compressed stream's checksum must match.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(xz-utils) commands=(xz) fast=1
what='xz -T2 -3, 8 MiB text'
prepare() { mx_gen_text input 8; }
workload() {
  mx_exec xz -T2 -3 --block-size=1MiB -c ../input >out.xz || return 1
  mx_exec xz -T2 -dc out.xz >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.xz
}
mx_main
