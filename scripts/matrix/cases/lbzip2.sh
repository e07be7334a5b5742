#!/usr/bin/env bash
# lbzip2 -n4: bzip2 with a pool of worker threads (condition variables
# throughout), 8 MiB of text each way.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(lbzip2) commands=(lbzip2)
what='lbzip2 -n4, 8 MiB text'
prepare() { mx_gen_text input 8; }
workload() {
  mx_exec lbzip2 -n4 -9 -c ../input >out.bz2 || return 1
  mx_exec lbzip2 -n4 -dc out.bz2 >back || return 1
  cmp ../input back && echo "round trip ok"
  sha256sum <out.bz2
}
mx_main
