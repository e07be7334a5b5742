#!/usr/bin/env bash
# pigz -p4: parallel gzip (a thread per block plus a writer thread) of
# 16 MiB of text; its output is identical for any thread count.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(pigz) commands=(pigz) fast=1
what='pigz -p4, 16 MiB text'
prepare() { mx_gen_text input 16; }
workload() {
  mx_exec pigz -p4 -6 -c ../input >out.gz || return 1
  mx_exec pigz -p4 -dc out.gz >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.gz
}
mx_main
