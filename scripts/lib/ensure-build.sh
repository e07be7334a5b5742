# scripts/lib/ensure-build.sh — sourced by scripts/mnrun, scripts/bench-compare,
# scripts/test, scripts/smoke and scripts/compat-matrix; not meant to be run.
#
# Makes sure the Debian packages the build needs are installed and that the
# build directory is configured and up to date:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/ensure-build.sh"
#   mnp_ensure_build || exit 1          # everything
#   mnp_ensure_build bench/mnp-demo     # only these ninja targets
#   mnp_ensure_build "${mnp_bench_targets[@]}"   (after mnp_find_bench_targets)
#
# Quiet when there is nothing to do; whatever it does print goes to stderr, so
# the caller's stdout stays clean. An existing build directory is used as it
# is (its options are kept): it is only configured when it has no build.ninja,
# and otherwise just rebuilt with ninja, which re-runs meson by itself when a
# meson.build changed.
#
# Meson options a caller wants the build directory to have (NAME=VALUE, e.g.
# mnp_build_options=(werror=true), set before mnp_ensure_build): given to
# meson setup, and set with meson configure on an existing directory whose
# value differs. CC and CXX in the environment choose the compilers of a
# directory meson sets up (meson keeps them afterwards).
#
# Sets, without exporting:
#   mnp_root    absolute path of the repository
#   mnp_build   absolute path of the build directory ($mnp_root/build)
#   mnp_shim    $mnp_build/shim/libmnpthread.so
# Environment (named MNPTHREAD_* so the runtime's MNP_* namespace stays its own):
#   MNPTHREAD_BUILD_DIR=DIR   use DIR instead of build/ (relative to the repository)
#   MNPTHREAD_SKIP_DEPS=1     do not check or install packages
#   MNPTHREAD_SKIP_BUILD=1    do not run meson or ninja at all
#
# Functions return non-zero on failure (after saying why) and never exit, so
# callers decide; they behave the same with or without `set -e`.

mnp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mnp_build=${MNPTHREAD_BUILD_DIR:-build}
[[ $mnp_build == /* ]] || mnp_build=$mnp_root/$mnp_build
# shellcheck disable=SC2034  # used by the scripts that source this file
mnp_shim=$mnp_build/shim/libmnpthread.so

# What building, testing and benchmarking need on Debian 12.
mnp_packages=(meson ninja-build g++ pkg-config libunwind-dev libjemalloc-dev
              libgtest-dev libbenchmark-dev python3)

mnp_build_options=()

mnp_say() { printf 'mnpthread: %s\n' "$*" >&2; }

# Installs whatever of mnp_packages is missing (apt-get update + install, as
# root or through sudo). Nothing happens, and nothing is printed, when all are
# installed or when this is not a dpkg-based system.
mnp_ensure_deps() {
  [[ ${MNPTHREAD_SKIP_DEPS:-0} == 1 ]] && return 0
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local -a missing=()
  local installed p
  # One dpkg-query for all; unknown packages are simply absent from its output.
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${mnp_packages[@]}" 2>/dev/null)
  for p in "${mnp_packages[@]}"; do
    grep -qx "$p installed" <<<"$installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0

  local -a sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      mnp_say "missing packages: ${missing[*]}; install them as root: apt-get install ${missing[*]}"
      return 1
    fi
  fi
  mnp_say "installing missing packages: ${missing[*]}"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
     ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; then
    mnp_say "could not install: ${missing[*]}"
    return 1
  fi
}

# mnp_ensure_build [TARGET...] — configures the build directory if it has no
# build.ninja, then runs ninja (on TARGETs only, if given).
# shellcheck disable=SC2120  # TARGETs are optional
mnp_ensure_build() {
  [[ ${MNPTHREAD_SKIP_BUILD:-0} == 1 ]] && return 0
  mnp_ensure_deps || return 1
  mnp_configure || return 1

  # ninja's chatter when there is nothing to do is dropped; build progress
  # and errors go to stderr.
  ninja -C "$mnp_build" "$@" 2>&1 |
    { grep -v -e '^ninja: Entering directory' -e '^ninja: no work to do\.$' >&2 || true; }
  local rc=${PIPESTATUS[0]}
  if ((rc != 0)); then
    mnp_say "build failed (ninja -C ${mnp_build#"$mnp_root"/}${1:+ $*})"
    return 1
  fi
}

# mnp_find_bench_targets — sets mnp_bench_targets to the ninja targets of the
# programs in bench/ (benchmarks and mnp-demo), which build without the
# runtime: a native-only run can go on while the runtime does not compile.
# Configures the build directory if needed.
mnp_find_bench_targets() {
  mnp_bench_targets=()
  [[ ${MNPTHREAD_SKIP_BUILD:-0} == 1 ]] && return 0
  mnp_ensure_deps || return 1
  mnp_configure || return 1
  local line
  while IFS= read -r line; do
    mnp_bench_targets+=("${line%%:*}")
  done < <(ninja -C "$mnp_build" -t targets all 2>/dev/null | grep -E '^bench/[^/.:]+: (c|cpp)_LINKER')
}

# mnp_configure — runs meson setup unless the build directory has a
# build.ninja, then meson configure for the mnp_build_options it lacks.
mnp_configure() {
  local -a defs=()
  local opt
  for opt in "${mnp_build_options[@]}"; do defs+=("-D$opt"); done
  if [[ ! -f $mnp_build/build.ninja ]]; then
    local -a setup=(meson setup "${defs[@]}")
    # A directory meson configured once but whose build.ninja is gone (an
    # interrupted setup): reconfigure it rather than refuse.
    [[ -f $mnp_build/meson-private/coredata.dat ]] && setup+=(--reconfigure)
    local log
    mnp_say "configuring ${mnp_build#"$mnp_root"/}"
    if ! log=$(cd "$mnp_root" && "${setup[@]}" "$mnp_build" 2>&1); then
      printf '%s\n' "$log" >&2
      mnp_say "meson setup failed"
      return 1
    fi
  elif ((${#defs[@]})); then
    # Only the options whose value differs: meson configure regenerates the
    # build even when nothing changes.
    local -a differ
    mapfile -t differ < <(python3 - "$mnp_build/meson-info/intro-buildoptions.json" "${mnp_build_options[@]}" <<'PY'
import json, sys
have = {o['name']: o['value'] for o in json.load(open(sys.argv[1]))}
for want in sys.argv[2:]:
    name, value = want.split('=', 1)
    cur = have.get(name)
    cur = ','.join(cur) if isinstance(cur, list) else str(cur).lower() if isinstance(cur, bool) else str(cur)
    if cur != value:
        print('-D' + want)
PY
    )
    if ((${#differ[@]})); then
      mnp_say "setting ${differ[*]} in ${mnp_build#"$mnp_root"/}"
      local log
      if ! log=$(meson configure "$mnp_build" "${differ[@]}" 2>&1); then
        printf '%s\n' "$log" >&2
        mnp_say "meson configure failed"
        return 1
      fi
    fi
  fi
}
