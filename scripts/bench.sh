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
#   scripts/bench.sh --vm       also the real-kernel run (root, QEMU; about 10-15 min):
#                               rpibootd serving a 32 MiB boot.img over vhci-hcd to 1 and
#                               8 USB/IP boards, one transfer in flight vs the default
#   scripts/bench.sh --vm-only  only the real-kernel run
#
# Options: --build-dir DIR (default build/bench, configured like the release
# preset), --no-build (use what is there), --daemon PATH (another rpibootd
# binary), --keep (keep the scratch directory), --reference-rpiboot PATH (with
# --vm: also time the replies of a user-supplied rpiboot binary, run as
# `PATH -d DIR`, against ours; nothing of it is part of this tree).
# VM_BOOT_MIB, VM_BOARDS, VM_REPEAT (default 32, "1 8", 3) size the throughput
# part of the real-kernel run; VM_REPLY_REPEAT and VM_REPLY_REQUESTS (default 3
# and 1000) its reply-time part (one board, 0 rounds to skip it).
# Firmware comes from $RPIBOOT_FIXTURES_DIR (default test/fixtures/firmware);
# without it, dummy files of realistic sizes are generated.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/bench"
daemon_bin=""
smoke=0
do_build=1
keep=0
reference=""
vm=0
in_process=1
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --vm) vm=1 ;;
        --vm-only) vm=1; in_process=0 ;;
        --build-dir) build="$2"; shift ;;
        --no-build) do_build=0 ;;
        --daemon) daemon_bin="$2"; shift ;;
        --reference-rpiboot) reference="$2"; shift ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$do_build" = 1 ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DRPIBOOT_BUILD_BENCH=ON >/dev/null
    fi
    targets=(rpibootd)
    [ "$in_process" = 1 ] && targets+=(bench_hotpaths bench_scenarios bench_storage_write)
    [ "$vm" = 1 ] && targets+=(rpiboot-usbip-boards rpiboot)
    if ! cmake --build "$build" --target "${targets[@]}" \
        -j"${BENCH_JOBS:-2}" >"${TMPDIR:-/tmp}/rpiboot-bench-build.log" 2>&1; then
        tail -n 40 "${TMPDIR:-/tmp}/rpiboot-bench-build.log" >&2
        echo "bench.sh: build failed (log: ${TMPDIR:-/tmp}/rpiboot-bench-build.log)" >&2
        exit 1
    fi
fi
daemon_bin="${daemon_bin:-$build/daemon/rpibootd}"
if [ "$in_process" = 1 ]; then
    for exe in bench/bench_hotpaths bench/bench_scenarios bench/bench_storage_write; do
        [ -x "$build/$exe" ] || { echo "bench.sh: $build/$exe is missing (build it first)" >&2; exit 2; }
    done
fi

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
               --bus-file-mib 4 --pipe-file-mib 8 --pipe-boards 1,8 --check)
else
    hot_args=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
    scen_args=(--counts 1,8,32,64 --rss-boards 32 --idle-seconds 60 --bus-boards 8
               --bus-file-mib 8 --pipe-file-mib 32 --pipe-boards 1,8 --repeat 3 --check)
fi

echo "rpibootd benchmarks ($([ "$smoke" = 1 ] && echo smoke || echo full) run)"
echo "daemon: $daemon_bin"
echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
     "load $(cut -d' ' -f1-3 /proc/loadavg); firmware: $firmware_note"
echo

rc=0
if [ "$in_process" = 1 ]; then
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
        --work "$work/scenarios" --hotpaths-json "$work/hotpaths.json" "${scen_args[@]}" || rc=1

    # Image writes go to a scratch file on a real disk (TMPDIR is often a tmpfs,
    # which refuses O_DIRECT) and, as root, to a loop device.
    echo
    storage_work=$(mktemp -d "${STORAGE_BENCH_DIR:-/var/tmp}/rpiboot-bench-storage-XXXXXX")
    if [ "$smoke" = 1 ]; then
        storage_args=(--size-mib 64 --repeat 1 --check)
    else
        storage_args=(--size-mib 512 --repeat 3 --check)
    fi
    "$build/bench/bench_storage_write" --work "$storage_work" "${storage_args[@]}" || rc=1
    rm -rf "$storage_work"
fi

# The real kernel: the VM of test/vm with USB/IP boards (test/e2e/guest/bench_wire.sh). The
# ratio of each pair of rows is measured in the same VM, minutes apart.
if [ "$vm" = 1 ]; then
    [ -x "$build/sim/usbip/rpiboot-usbip-boards" ] || {
        echo "bench.sh: $build/sim/usbip/rpiboot-usbip-boards is missing" >&2; exit 2; }
    if [ -n "$reference" ]; then
        # The guest sees the host's files (its /tmp included) at the same paths.
        reference=$(realpath "$reference")
        [ -x "$reference" ] || { echo "bench.sh: $reference is not executable" >&2; exit 2; }
        export REFERENCE_RPIBOOT="$reference"
    fi
    echo
    echo "real kernel (QEMU TCG guest, vhci-hcd, USB/IP boards), ${VM_BOOT_MIB:-32} MiB boot.img," \
         "2712 mass-storage-gadget; load $(cut -d' ' -f1-3 /proc/loadavg)"
    vm_rc=0
    BOOT_MIB=${VM_BOOT_MIB:-32} BENCH_BOARDS=${VM_BOARDS:-1 8} BENCH_REPEAT=${VM_REPEAT:-3} \
        REPLY_REPEAT=${VM_REPLY_REPEAT:-3} REPLY_REQUESTS=${VM_REPLY_REQUESTS:-1000} \
        "$root/test/e2e/run-e2e.sh" bench_wire "$build" "$work/vm" "${VM_TIMEOUT:-1800}" \
        >"$work/vm.log" 2>&1 || vm_rc=$?
    if [ "$vm_rc" = 77 ]; then
        echo "  skipped: the VM cannot run here ($(grep -m1 skipped "$work/vm.log"))"
    elif [ "$vm_rc" != 0 ] || { [ "$(wc -l <"$work/vm/wire.tsv" 2>/dev/null || echo 0)" -lt 3 ] &&
        [ "$(wc -l <"$work/vm/reply.tsv" 2>/dev/null || echo 0)" -lt 2 ]; }; then
        # Failed, or neither part (throughput, VM_REPEAT; reply time, VM_REPLY_REPEAT) has a row.
        tail -n 30 "$work/vm.log" >&2
        echo "bench.sh: the real-kernel run failed (exit $vm_rc)" >&2
        rc=1
    else
        python3 - "$work/vm/wire.tsv" "$work/vm/reply.tsv" <<'EOF'
import csv, os, statistics, sys
med = statistics.median
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("Bulk throughput, rpibootd, 1 transfer in flight vs the default queue; rounds alternate:")
print("| boards | round | 1 in flight: per board / total | queued: per board / total | ratio per board | ratio total |")
print("|---|---|---|---|---|---|")
by = {}
for r in rows:
    by.setdefault((r["boards"], r["rep"]), {})["one" if r["in_flight"] == "1" else "queued"] = r
ratios = {}
for (n, rep), pair in by.items():
    one, queued = pair.get("one"), pair.get("queued")
    if not one or not queued:
        continue
    f = lambda r: "%s / %s MB/s (%s s)" % (r["per_board_MBps"], r["total_MBps"], r["seconds"])
    ratio = lambda k: float(queued[k]) / float(one[k]) if float(one[k]) > 0 else 0
    rb, rt = ratio("per_board_MBps"), ratio("total_MBps")
    ratios.setdefault(n, []).append((rb, rt))
    print("| %s | %s | %s | %s | %.2fx | %.2fx |" % (n, rep, f(one), f(queued), rb, rt))
for n, rs in ratios.items():
    pb, tt = [r[0] for r in rs], [r[1] for r in rs]
    print("%s board(s): ratio per board median %.2fx (min %.2fx, max %.2fx), total median %.2fx "
          "(min %.2fx, max %.2fx), %d round(s)" % (n, med(pb), min(pb), max(pb), med(tt), min(tt),
                                                   max(tt), len(rs)))
path = sys.argv[2]
if os.path.exists(path):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    if rows:
        print()
        print("Reply time on the real kernel, 1 board (request handed to the kernel -> host's reply"
              " arriving), us:")
        print("| host | round | requests | mean | p50 | p99 | min | max |")
        print("|---|---|---|---|---|---|---|---|")
        tools = {}
        for r in rows:
            tools.setdefault(r["tool"], []).append(r)
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["tool"], r["rep"], r["requests"], r["mean_us"], r["p50_us"], r["p99_us"],
                r["min_us"], r["max_us"]))
        summary = {}
        for tool, rs in tools.items():
            means = [float(r["mean_us"]) for r in rs if int(r["requests"]) > 0]
            p99s = [float(r["p99_us"]) for r in rs if int(r["requests"]) > 0]
            if means:
                summary[tool] = (med(means), med(p99s))
                print("%s: mean over rounds: median %.0f us (spread %.0f-%.0f), p99 median %.0f us"
                      " (spread %.0f-%.0f), %d round(s)" % (tool, med(means), min(means),
                                                           max(means), med(p99s), min(p99s),
                                                           max(p99s), len(means)))
        if "reference" in summary:
            ref = summary["reference"]
            for tool in ("rpiboot", "rpibootd", "rpibootd-quiet"):
                if tool in summary:
                    print("%s / reference: mean %.2fx, p99 %.2fx (medians over rounds; < 1 is "
                          "faster)" % (tool, summary[tool][0] / ref[0], summary[tool][1] / ref[1]))
EOF
        [ "$vm_rc" = 0 ] || { echo "bench.sh: some board did not boot in the VM (exit $vm_rc)" >&2; rc=1; }
    fi
    [ "$keep" = 1 ] && echo "bench.sh: VM results in $work/vm" >&2
    echo "load after the real-kernel run: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
exit "$rc"
