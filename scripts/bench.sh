#!/usr/bin/env bash
# Runs every benchmark of rpibootd and prints one table of figures
# (docs/performance.md): the Google Benchmark hot paths (bench_hotpaths) and
# the scenario runner that drives the real daemon with virtual boards
# (bench_scenarios), then the image write benchmark (bench_storage_write:
# the storage writer next to dd bs=4M oflag=direct on the same target).
#
#   scripts/bench.sh            full run (about 2 minutes + build: 60 s idle, N up to 64)
#   scripts/bench.sh --smoke    short run for CI (about 45 s + build); fails only on
#                               gross regressions measured as ratios within the run
#
# Options: --build-dir DIR (default build/bench, configured like the release
# preset), --no-build (use what is there), --daemon PATH (another rpibootd
# binary), --keep (keep the scratch directory).
# Firmware comes from $RPIBOOT_FIXTURES_DIR (default test/fixtures/firmware);
# without it, dummy files of realistic sizes are generated.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/bench"
daemon_bin=""
smoke=0
do_build=1
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --build-dir) build="$2"; shift ;;
        --no-build) do_build=0 ;;
        --daemon) daemon_bin="$2"; shift ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$do_build" = 1 ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DRPIBOOT_BUILD_BENCH=ON >/dev/null
    fi
    if ! cmake --build "$build" --target rpibootd bench_hotpaths bench_scenarios bench_storage_write \
        -j"${BENCH_JOBS:-2}" >"${TMPDIR:-/tmp}/rpiboot-bench-build.log" 2>&1; then
        tail -n 40 "${TMPDIR:-/tmp}/rpiboot-bench-build.log" >&2
        echo "bench.sh: build failed (log: ${TMPDIR:-/tmp}/rpiboot-bench-build.log)" >&2
        exit 1
    fi
fi
daemon_bin="${daemon_bin:-$build/daemon/rpibootd}"
for exe in bench/bench_hotpaths bench/bench_scenarios bench/bench_storage_write; do
    [ -x "$build/$exe" ] || { echo "bench.sh: $build/$exe is missing (build it first)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/rpiboot-bench-XXXXXX")
if [ "$keep" = 1 ]; then
    echo "bench.sh: scratch directory $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi

# The msd firmware set the daemon serves: <base>/msd/{bootcode.bin,start.elf}
# and <base>/msd/2711/{bootcode4.bin,start4.elf}.
fixtures="${RPIBOOT_FIXTURES_DIR:-$root/test/fixtures/firmware}"
fw="$work/firmware"
mkdir -p "$fw/msd/2711"
if [ -f "$fixtures/msd/bootcode.bin" ] && [ -f "$fixtures/msd/start.elf" ] &&
   [ -f "$fixtures/2711/bootcode4.bin" ]; then
    cp "$fixtures/msd/bootcode.bin" "$fixtures/msd/start.elf" "$fw/msd/"
    cp "$fixtures/2711/bootcode4.bin" "$fw/msd/2711/bootcode4.bin"
    cp "$fixtures/msd/start.elf" "$fw/msd/2711/start4.elf"
    firmware_note="fixtures ($fixtures)"
else
    head -c 52624 /dev/urandom >"$fw/msd/bootcode.bin"
    head -c 536536 /dev/urandom >"$fw/msd/start.elf"
    head -c 105984 /dev/urandom >"$fw/msd/2711/bootcode4.bin"
    head -c 2277024 /dev/urandom >"$fw/msd/2711/start4.elf"
    firmware_note="generated dummy files (fixtures not found)"
fi
chmod -R a-w "$fw"

if [ "$smoke" = 1 ]; then
    hot_args=(--benchmark_min_time=0.05)
    scen_args=(--counts 1,8,32 --rss-boards 32 --idle-seconds 10 --bus-boards 4
               --bus-file-mib 4 --check)
else
    hot_args=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
    scen_args=(--counts 1,8,32,64 --rss-boards 32 --idle-seconds 60 --bus-boards 8
               --bus-file-mib 8 --repeat 3 --check)
fi

echo "rpibootd benchmarks ($([ "$smoke" = 1 ] && echo smoke || echo full) run)"
echo "daemon: $daemon_bin"
echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
     "load $(cut -d' ' -f1-3 /proc/loadavg); firmware: $firmware_note"
echo

"$build/bench/bench_hotpaths" "${hot_args[@]}" --benchmark_out="$work/hotpaths.json" \
    --benchmark_out_format=json >"$work/hotpaths.txt" 2>&1 || {
    cat "$work/hotpaths.txt" >&2
    echo "bench.sh: bench_hotpaths failed" >&2
    exit 1
}
if [ "$smoke" = 0 ]; then
    cat "$work/hotpaths.txt"
    echo
fi

# With repetitions, keep the medians for the table.
if [ "$smoke" = 0 ]; then
    python3 - "$work/hotpaths.json" <<'EOF' 2>/dev/null || true
import json, sys
path = sys.argv[1]
data = json.load(open(path))
keep = [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]
for b in keep:
    b["name"] = b.get("run_name", b["name"])
if keep:
    data["benchmarks"] = keep
    json.dump(data, open(path, "w"))
EOF
fi

"$build/bench/bench_scenarios" --daemon "$daemon_bin" --firmware "$fw" \
    --work "$work/scenarios" --hotpaths-json "$work/hotpaths.json" "${scen_args[@]}"

# Image writes go to a scratch file on a real disk (TMPDIR is often a tmpfs,
# which refuses O_DIRECT) and, as root, to a loop device.
echo
storage_work=$(mktemp -d "${STORAGE_BENCH_DIR:-/var/tmp}/rpiboot-bench-storage-XXXXXX")
if [ "$smoke" = 1 ]; then
    storage_args=(--size-mib 64 --repeat 1 --check)
else
    storage_args=(--size-mib 512 --repeat 3 --check)
fi
status=0
"$build/bench/bench_storage_write" --work "$storage_work" "${storage_args[@]}" || status=$?
rm -rf "$storage_work"
exit "$status"
