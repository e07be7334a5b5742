#!/usr/bin/env bash
# pbzip2 -p4: parallel bzip2 (producer, consumer threads, a writer) of
# 16 MiB of text, then parallel decompression.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(pbzip2) commands=(pbzip2) fast=1
what='pbzip2 -p4, 8 MiB text'
prepare() { mx_gen_text input 8; }
workload() {
  mx_exec pbzip2 -p4 -9 -c ../input >out.bz2 || return 1
  mx_exec pbzip2 -p4 -dc out.bz2 >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.bz2
}
mx_main
