#!/usr/bin/env bash
# git grep --threads=4 over a repository of 400 files, and git repack with
# 4 threads (delta search); hits and the pack's object list are compared.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=tools packages=(git) commands=(git)
what='git grep --threads=4 + repack --threads=4, 400 files'
prepare() {
  mx_gen_text big 16 && mkdir repo && split -n 400 -d -a 3 big repo/f. && rm big &&
  cd repo && git init -q && git add . &&
  git -c user.name=m -c user.email=m@x commit -qm init
}
workload() {
  cp -a ../repo repo && cd repo || return 1
  mx_exec git grep --threads=4 -c -E '(ab|cd)[a-z]e' | sort >../hits || return 1
  wc -l <../hits; sha256sum <../hits
  mx_exec git -c pack.threads=4 repack -adq -f --window=50 || return 1
  git count-objects -v | grep -E '^(count|in-pack):'
  git fsck --no-progress --strict && echo "fsck ok"
}
mx_main
