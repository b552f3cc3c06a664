#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang, ASan + UBSan) and runs
# each for N seconds on a scratch copy of its committed seed corpus and
# regression inputs, so the committed corpus never grows by itself.
# Prints executions, exec/s and coverage per target; exits non-zero when any
# target crashed, leaked, timed out or broke an invariant (the input is kept
# under <build>/fuzz-artifacts/<target>/).
#
# Usage: scripts/fuzz.sh [seconds] [target...]   (60 s, every target by default)
# Environment: RPIBOOT_FUZZ_BUILD_DIR (build/fuzz), RPIBOOT_FUZZ_JOBS (2),
#              RPIBOOT_FUZZ_KEEP=1 keeps the grown corpora (printed path).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds="${1:-60}"
shift || true
build="${RPIBOOT_FUZZ_BUILD_DIR:-$root/build/fuzz}"
jobs="${RPIBOOT_FUZZ_JOBS:-2}"

if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds] [target...]" >&2
  exit 2
fi

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRPIBOOT_FUZZ=ON -DRPIBOOT_BUILD_TESTS=OFF -DRPIBOOT_BUILD_DAEMON=OFF -DRPIBOOT_WERROR=ON \
  >/dev/null
targets=("$@")
if ((${#targets[@]})); then
  cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"
else
  cmake --build "$build" -j "$jobs" --target fuzz_all
  for bin in "$build"/test/fuzz/fuzz_*; do
    name=$(basename "$bin")
    [[ "$name" == fuzz_replay || ! -x "$bin" ]] && continue
    targets+=("${name#fuzz_}")
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rpiboot-fuzz.XXXXXX")
if [[ "${RPIBOOT_FUZZ_KEEP:-0}" == 1 ]]; then
  echo "grown corpora kept in $work"
else
  trap 'rm -rf "$work"' EXIT
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/test/fuzz/fuzz_$t"
  if [[ ! -x "$bin" ]]; then
    echo "fuzz: no target $t" >&2
    failed+=("$t")
    continue
  fi
  corpus="$work/$t/corpus"
  artifacts="$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$work/$t/tmp" "$artifacts"
  for dir in "test/fuzz/corpus/$t" "test/fuzz/regressions/$t"; do
    [[ -d "$dir" ]] && cp -r "$dir"/. "$corpus"/
  done
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=4096
        -artifact_prefix="$artifacts/")
  [[ -f "test/fuzz/dict/$t.dict" ]] && args+=(-dict="test/fuzz/dict/$t.dict")
  log="$work/$t/log"
  echo "== fuzz $t for ${seconds} s"
  rc=0
  TMPDIR="$work/$t/tmp" "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  inputs=$(find "$corpus" -type f | wc -l)
  line=$(printf '%-16s execs %-10s exec/s %-7s %-22s corpus %s' "$t" "${execs:-?}" \
    "${rate:-?}" "${cov:-cov: ?}" "$inputs")
  if ((rc != 0)); then
    line+="  CRASH (exit $rc)"
    failed+=("$t")
    grep -E 'ERROR|what\(\)|invariant|ESCAPE|runtime error|SUMMARY|Test unit written| in rpiboot::' "$log" | head -30 >&2 || true
    echo "fuzz: $t failed; full log: $log, inputs in $artifacts" >&2
    trap - EXIT  # keep the log
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary (${seconds} s per target):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran without a crash"
