#!/usr/bin/env bash
# 7-Zip 7zz -mmt4: LZMA2 archive of a tree of text files with 4 threads,
# then test and extract; the extracted tree must be the original.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=compress packages=(7zip) commands=(7zz)
what='7zz a -mmt4 -mx3 (LZMA2), 6 MiB in 24 files'
prepare() {
  mx_gen_text big 6 && mkdir tree && split -n 24 -d big tree/part. && rm big
}
workload() {
  mx_exec 7zz a -bd -mmt4 -mx3 out.7z ../tree >log || { cat log >&2; return 1; }
  mx_exec 7zz t -bd -mmt4 out.7z >log || { cat log >&2; return 1; }
  grep -E '^Everything is Ok' log
  mx_exec 7zz x -bd -mmt4 -oback out.7z >log || { cat log >&2; return 1; }
  diff -r ../tree back/tree && echo "extracted tree identical"
}
mx_main
