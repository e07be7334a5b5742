#!/usr/bin/env bash
# GNU sort --parallel=4: a 400,000-line sort (coreutils' merge threads).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=tools packages=(coreutils) commands=(sort) fast=1
what='sort --parallel=4 -S 64M, 400k lines'
prepare() { mx_gen_text input 20; }
workload() {
  mx_exec env LC_ALL=C sort --parallel=4 -S 64M -o sorted ../input || return 1
  wc -l <sorted
  sha256sum <sorted
}
mx_main
