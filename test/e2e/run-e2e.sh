#!/usr/bin/env bash
# Runs one end-to-end test (guest/NAME.sh) in the test VM of test/vm, with its results
# folder shared back to the host. Exit 77 (ctest's skip) when the VM cannot run here: no
# runner, not root, no kernel package, or a binary the test needs was not built.
#   run-e2e.sh NAME BUILD_DIR RESULTS_DIR [TIMEOUT_S]
set -uo pipefail

name=${1:?usage: run-e2e.sh NAME BUILD_DIR RESULTS_DIR [TIMEOUT_S]}
build=${2:?build directory}
results=${3:?results directory}
timeout_s=${4:-420}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runner=$here/../vm/run-in-vm

skip() {
    echo "run-e2e: skipped: $*" >&2
    exit 77
}

[[ -x $runner ]] || skip "no VM runner at $runner"
((EUID == 0)) || skip "the VM runner needs root (it exports / over 9p)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[[ -x $build/sim/usbip/rpiboot-usbip-boards ]] || skip "rpiboot-usbip-boards is not built"

rm -rf "$results"
mkdir -p "$results"
build=$(cd "$build" && pwd)
results=$(cd "$results" && pwd)
envs=()
# Settings of the guest scripts, when set here (the benchmark's sizes, a reference binary).
for var in RPIBOOT_FIXTURES_DIR BOOT_MIB BENCH_BOARDS BENCH_REPEAT REPLY_REPEAT REPLY_REQUESTS \
    REPLY_TOOLS REFERENCE_RPIBOOT; do
    [[ -n ${!var:-} ]] && envs+=(--env "$var")
done
start=$SECONDS
rc=0
# The guest works in its own /tmp; the command must start in a folder it can see.
(cd / && "$runner" --timeout "$timeout_s" "${envs[@]}" --merge-output --share "$results" \
    --console "$results/console.txt" -- "$here/guest/$name.sh" "$build" "$results") || rc=$?
echo "run-e2e: $name: exit $rc after $((SECONDS - start)) s (VM boot included); results in $results"
exit "$rc"
