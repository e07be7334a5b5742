#!/usr/bin/env bash
# plzip -n4: parallel lzip (courier/worker threads) of 8 MiB of text.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(plzip) commands=(plzip)
what='plzip -n4 -1 -B 1MiB, 8 MiB text'
prepare() { mx_gen_text input 8; }
workload() {
  mx_exec plzip -n4 -1 -B 1MiB -c ../input >out.lz || return 1
  mx_exec plzip -n4 -dc out.lz >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.lz
}
mx_main
