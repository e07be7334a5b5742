# scripts/matrix/lib.sh — the harness every case of scripts/compat-matrix
# sources; not meant to be run.
#
# A case is one small bash file in scripts/matrix/cases/ that sets a few
# variables, defines prepare() and workload(), and ends with `mx_main`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   kind=compress              # the group in the tables
#   packages=(xz-utils)        # Debian packages it needs (apt-get installs them)
#   commands=(xz)              # commands that must exist after the install
#   fast=1                     # part of the quick subset (scripts/test)
#   what='xz -T2, 24 MB'       # one line for the tables
#   prepare() { ...; }         # once, natively, in the scratch directory
#   workload() { ...; }        # once per mode, in a fresh directory of its own
#   mx_main
#
# mx_main installs what is missing (unless MX_NO_INSTALL=1), runs prepare,
# then workload three times: natively (mode "native"), under the shim with
# the runtime's default number of Ps ("shim") and with MNP_PROCS=1 ("shim1").
# The program under test is started with mx_exec (a command that ends) or
# mx_server (a server, stopped when the workload returns); everything else a
# workload runs (input generators, load generators, clients, checksums) runs
# natively, so only the program under test carries the shim.
#
# Correctness: each mode's exit status and stdout must be those of the native
# run (a workload prints only deterministic things: checksums, verified
# counts, sorted results). A native run that fails makes the case SKIP (the
# machine cannot run it); a shim run that differs makes it FAIL.
#
# Metric: by default the wall time of the mx_exec calls (unit s, lower is
# better); a workload may report its own with `mx_metric VALUE UNIT
# higher|lower` (requests/s from a load generator). The ratio printed is
# normalised so that above 1 means the shim was faster.
#
# Kernel threads: the peak "Threads:" of /proc/PID/status of the program
# under test, sampled every 20 ms (with MX_TREE=1, the largest over it and
# every process below it, for build tools whose work is in children).
#
# Output: exactly one line on stdout, tab-separated:
#   case kind status native shim shim1 unit ratio ratio1 kthreads-native
#   kthreads-shim kthreads-shim1 seconds what notes
# Everything else (install logs, failing runs' stderr) goes to stderr.
#
# Environment (set by scripts/compat-matrix; defaults for a case run alone):
#   MX_SHIM        the library to preload (default: build/shim/libmnpthread.so)
#   MX_NO_INSTALL  1: do not install packages; a missing one makes a SKIP
#   MX_SCRATCH     the case's scratch directory (default: a new one, removed)
#   MX_RUN_TIMEOUT seconds one mode's workload may take (default 120)

set -uo pipefail

mx_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mx_root=$(cd "$mx_dir/../.." && pwd)
mx_case=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
MX_SHIM=${MX_SHIM:-$mx_root/build/shim/libmnpthread.so}

kind=other packages=() commands=() fast=0 what='' MX_TREE=0
mx_notes=()

mx_log() { printf '[%s] %s\n' "$mx_case" "$*" >&2; }

# mx_note TEXT — adds TEXT to the notes column.
mx_note() { mx_notes+=("$*"); }

# mx_free_port — a TCP port nobody listens on (asks the kernel for one).
mx_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mx_wait_port PORT [SECONDS] — until something accepts on 127.0.0.1:PORT.
mx_wait_port() {
  local port=$1 limit=${2:-20} i
  for ((i = 0; i < limit * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  mx_log "nothing listens on port $port after ${limit}s"
  return 1
}

# mx_wait_file TEST-ARGS... — up to 20 s for `test TEST-ARGS` to hold.
mx_wait_file() {
  local i
  for ((i = 0; i < 200; i++)); do
    test "$@" && return 0
    sleep 0.1
  done
  mx_log "timed out waiting for: test $*"
  return 1
}

# mx_shim_env — prints the env assignments of the current mode, one a line.
mx_shim_env() {
  case ${MX_MODE:-native} in
    shim) printf '%s\n' "LD_PRELOAD=$MX_SHIM" ;;
    shim1) printf '%s\n' "LD_PRELOAD=$MX_SHIM" "MNP_PROCS=1" ;;
  esac
}

# mx_peak_of PID — the largest thread count of PID (or, with MX_TREE=1, of
# PID and its descendants) right now.
mx_peak_of() {
  local pid=$1 key val rest
  if ((MX_TREE)); then
    ps -e -o pid=,ppid=,nlwp= 2>/dev/null | awk -v root="$pid" '
      { parent[$1] = $2; n[$1] = $3 }
      END { best = 0
            for (p in n) { q = p
              for (d = 0; d < 64 && q != "" && q != 0; d++) {
                if (q == root) { if (n[p] > best) best = n[p]; break }
                q = parent[q] } }
            print best }'
    return
  fi
  while read -r key val rest; do
    [[ $key == Threads: ]] && { echo "$val"; return; }
  done 2>/dev/null <"/proc/$pid/status"
  echo 0
}

# mx_watch PID FILE — samples PID every 20 ms until it ends; keeps the peak
# thread count in FILE (the largest of FILE's old value and what it saw).
mx_watch() {
  local pid=$1 file=$2 peak=0 n
  [[ -s $file ]] && peak=$(<"$file")
  while kill -0 "$pid" 2>/dev/null; do
    n=$(mx_peak_of "$pid")
    [[ $n =~ ^[0-9]+$ ]] && ((n > peak)) && { peak=$n; echo "$peak" >"$file"; }
    sleep 0.02
  done
  echo "$peak" >"$file"
}

# mx_exec CMD ARGS... — runs the program under test (with the shim in a shim
# mode), samples its kernel threads, adds its wall time to the mode's total.
# Its exit status is CMD's. Redirections of the call apply to CMD.
mx_exec() {
  local -a envs=()
  mapfile -t envs < <(mx_shim_env)
  local t0=$EPOCHREALTIME rc=0
  # <&0: an asynchronous command would otherwise read /dev/null.
  env "${envs[@]}" "$@" <&0 &
  local pid=$!
  mx_watch "$pid" "$MX_RUN/.peak"
  wait "$pid" || rc=$?
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" -v old="$(cat "$MX_RUN/.wall" 2>/dev/null || echo 0)" \
    'BEGIN { printf "%.6f\n", old + (b - a) }' >"$MX_RUN/.wall"
  return "$rc"
}

# mx_server NAME CMD ARGS... — starts a server (the program under test) in
# the background with the shim in a shim mode; its output goes to NAME.log.
# Sets mx_server_pid. mx_stop_servers (run when the workload returns) stops
# it: SIGTERM, 10 s, then SIGKILL.
mx_server_pids=()
mx_server() {
  local name=$1
  shift
  local -a envs=()
  mapfile -t envs < <(mx_shim_env)
  env "${envs[@]}" "$@" >"$name.log" 2>&1 &
  mx_server_pid=$!
  mx_server_pids+=("$mx_server_pid")
  mx_watch "$mx_server_pid" "$MX_RUN/.peak" &
}

mx_stop_servers() {
  local pid i
  for pid in "${mx_server_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${mx_server_pids[@]}"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  mx_server_pids=()
  wait 2>/dev/null  # the samplers
}

# mx_server_exit PID — waits for a server the workload stopped itself and
# prints its exit status (for the comparison).
mx_server_exit() {
  local rc=0
  wait "$1" || rc=$?
  echo "server exit $rc"
}

# mx_metric VALUE UNIT higher|lower — the mode's metric instead of wall time.
mx_metric() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >"$MX_RUN/.metric"
}

# mx_gen_text FILE MB — a deterministic, compressible text file of MB MiB.
mx_gen_text() {
  python3 - "$1" "$2" <<'EOF'
import random, sys
rnd = random.Random(11)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(2, 9)))
         for _ in range(5000)]
target = int(sys.argv[2]) << 20
with open(sys.argv[1], 'w') as f:
    n = 0
    while n < target:
        line = ' '.join(rnd.choice(words) for _ in range(12)) + '\n'
        f.write(line)
        n += len(line)
EOF
}

# mx_install — installs the missing packages of `packages`; returns 1 with
# mx_skip set when it cannot.
mx_skip=''
mx_install() {
  ((${#packages[@]})) || return 0
  local -a missing=()
  local installed p
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null)
  for p in "${packages[@]}"; do
    grep -qx "$p installed" <<<"$installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ ${MX_NO_INSTALL:-0} == 1 ]]; then
    mx_skip="not installed: ${missing[*]}"
    return 1
  fi
  local -a sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || { mx_skip="not root, cannot install ${missing[*]}"; return 1; }
    sudo=(sudo)
  fi
  mx_log "installing ${missing[*]}"
  local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
  if ! "${sudo[@]}" "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo[@]}" "${apt[@]}" update >&2
    "${sudo[@]}" "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2 ||
      { mx_skip="apt-get install failed: ${missing[*]}"; return 1; }
  fi
}

# mx_run_mode MODE [ROUND] — runs workload in $MX_SCRATCH/MODE (round 1)
# or MODE.rROUND; leaves out, err, rc there.
mx_run_mode() {
  local mode=$1 round=${2:-1}
  local dir=$MX_SCRATCH/$mode
  ((round > 1)) && dir+=.r$round
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    export MX_MODE=$mode MX_RUN=$dir
    trap mx_stop_servers EXIT
    workload
  ) </dev/null >"$dir/out" 2>"$dir/err" &
  local pid=$! rc=0 start=$SECONDS limit=${MX_RUN_TIMEOUT:-120} timed_out=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    if ((SECONDS - start > limit)); then
      echo "timed out after ${limit}s" >>"$dir/err"
      pkill -KILL -P "$pid" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
      timed_out=1
      break
    fi
  done
  wait "$pid" 2>/dev/null || rc=$?
  ((timed_out)) && rc=124
  echo "$rc" >"$dir/rc"
}

# mx_value MODE — "VALUE<TAB>UNIT<TAB>BETTER" of a mode (of a round's
# directory when MODE is MODE.rN).
mx_value() {
  local dir=$MX_SCRATCH/$1
  if [[ -s $dir/.metric ]]; then
    cat "$dir/.metric"
  elif [[ -s $dir/.wall ]]; then
    printf '%s\ts\tlower\n' "$(awk '{ printf "%.3f", $1 }' "$dir/.wall")"
  else
    printf -- '-\t-\t-\n'
  fi
}

mx_ratio() {  # NATIVE SHIM BETTER
  awk -v n="$1" -v s="$2" -v b="$3" 'BEGIN {
    if (n == "-" || s == "-" || n + 0 <= 0 || s + 0 <= 0) { print "-"; exit }
    printf "%.3f", (b == "higher") ? s / n : n / s }'
}

mx_emit() {  # STATUS [REASON]
  local status=$1 reason=${2:-}
  [[ -n $reason ]] && mx_notes=("$reason" "${mx_notes[@]}")
  local nv=- sv=- s1v=- unit=- better=- r=- r1=- tn=- ts=- t1=- x
  if [[ $status != SKIP || -s ${MX_SCRATCH:-/nonexistent}/native/rc ]]; then
    IFS=$'\t' read -r nv unit better < <(mx_value native)
    IFS=$'\t' read -r sv x x < <(mx_value shim)
    IFS=$'\t' read -r s1v x x < <(mx_value shim1)
    r=$(mx_ratio "$nv" "$sv" "$better")
    r1=$(mx_ratio "$nv" "$s1v" "$better")
    tn=$(cat "$MX_SCRATCH/native/.peak" 2>/dev/null || echo -)
    ts=$(cat "$MX_SCRATCH/shim/.peak" 2>/dev/null || echo -)
    t1=$(cat "$MX_SCRATCH/shim1/.peak" 2>/dev/null || echo -)
  fi
  local notes
  notes=$(IFS=';'; printf '%s' "${mx_notes[*]}" | tr '\t\n' '  ')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$mx_case" "$kind" "$status" "$nv" "$sv" "$s1v" "$unit" "$r" "$r1" "$tn" "$ts" "$t1" \
    "$((SECONDS - mx_t0))" "$what" "${notes:--}"
}

# mx_tail FILE — the last lines of FILE, squeezed onto one line.
mx_tail() { tail -n "${2:-3}" "$1" 2>/dev/null | tr '\n\t' '  ' | cut -c1-300; }

mx_main() {
  mx_t0=$SECONDS
  if ! mx_install; then mx_emit SKIP "$mx_skip"; return 0; fi
  local c
  for c in "${commands[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { mx_emit SKIP "command not found: $c"; return 0; }
  done
  if [[ ! -f $MX_SHIM ]]; then mx_emit SKIP "shim not built: $MX_SHIM"; return 0; fi
  local own_scratch=0
  if [[ -z ${MX_SCRATCH:-} ]]; then
    MX_SCRATCH=$(mktemp -d "/tmp/mx-$mx_case.XXXXXX") own_scratch=1
  fi
  mkdir -p "$MX_SCRATCH"
  # Servers that drop root (nginx workers, memcached, postgres) read here.
  chmod 755 "$MX_SCRATCH"
  export MX_SCRATCH MX_SHIM
  ((own_scratch)) && trap 'rm -rf "$MX_SCRATCH"' EXIT
  if declare -F prepare >/dev/null; then
    if ! (cd "$MX_SCRATCH" && prepare) </dev/null >"$MX_SCRATCH/prepare.log" 2>&1; then
      mx_emit SKIP "prepare failed: $(mx_tail "$MX_SCRATCH/prepare.log")"
      return 0
    fi
  fi
  # MX_ROUNDS (compat-matrix --rounds): the three modes run in turn that
  # many times, so that a slow minute of the machine falls on all of them;
  # every round must match native's first, and each mode's metric is the
  # median of its rounds (mx_rounds_median).
  local mode round rounds=${MX_ROUNDS:-1}
  for ((round = 1; round <= rounds; round++)); do
    for mode in native shim shim1; do
      mx_run_mode "$mode" "$round"
    done
  done
  local rn rs
  rn=$(<"$MX_SCRATCH/native/rc")
  if ((rn != 0)); then
    mx_log "native run failed (exit $rn); its stderr:"
    tail -n 20 "$MX_SCRATCH/native/err" >&2
    mx_emit SKIP "native run failed (exit $rn): $(mx_tail "$MX_SCRATCH/native/err")"
    return 0
  fi
  local why=() label dir
  for ((round = 1; round <= rounds; round++)); do
    for mode in native shim shim1; do
      ((round == 1)) && [[ $mode == native ]] && continue
      label=$mode dir=$MX_SCRATCH/$mode
      [[ $mode == shim1 ]] && label='shim MNP_PROCS=1'
      ((round > 1)) && label+=" (round $round)" dir+=.r$round
      rs=$(<"$dir/rc")
      if [[ $rs != "$rn" ]]; then
        why+=("$label: exit $rs (native $rn): $(mx_tail "$dir/err")")
      elif ! cmp -s "$MX_SCRATCH/native/out" "$dir/out"; then
        why+=("$label: stdout differs: $(diff "$MX_SCRATCH/native/out" "$dir/out" | head -n 4 | tr '\n\t' '  ' | cut -c1-300)")
      fi
    done
  done
  if ((${#why[@]})); then
    for mode in native shim shim1; do
      mx_log "--- $mode: exit $(<"$MX_SCRATCH/$mode/rc"); stdout, then stderr (last lines):"
      tail -n 10 "$MX_SCRATCH/$mode/out" >&2
      tail -n 60 "$MX_SCRATCH/$mode/err" >&2
    done
    mx_emit FAIL "${why[*]}"
    return 1
  fi
  ((rounds > 1)) && mx_rounds_median "$rounds"
  mx_emit PASS
}

# mx_rounds_median N — each mode's metric becomes the median of its N
# rounds (written where mx_value reads round 1's), its peak kernel threads
# the highest; a note gives every round's value.
mx_rounds_median() {
  local n=$1 mode round v unit better vals peaks
  for mode in native shim shim1; do
    vals=() peaks=()
    for ((round = 1; round <= n; round++)); do
      local m=$mode
      ((round > 1)) && m+=.r$round
      IFS=$'\t' read -r v unit better < <(mx_value "$m")
      [[ $v == - ]] || vals+=("$v")
      [[ -s $MX_SCRATCH/$m/.peak ]] && peaks+=("$(<"$MX_SCRATCH/$m/.peak")")
    done
    ((${#vals[@]})) || continue
    v=$(printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 } END {
      if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    printf '%s\t%s\t%s\n' "$v" "$unit" "$better" >"$MX_SCRATCH/$mode/.metric"
    ((${#peaks[@]})) && printf '%s\n' "${peaks[@]}" | sort -n | tail -n 1 >"$MX_SCRATCH/$mode/.peak"
    mx_note "$mode rounds: ${vals[*]}"
  done
}
