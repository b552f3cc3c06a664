#!/bin/bash
# Benchmark, inside the test VM (not a test: scripts/bench.sh --vm runs it): bulk throughput on
# the real kernel USB stack. rpibootd serves a BOOT_MIB (default 32) MiB boot.img to BCM2712
# mass-storage-gadget boards over vhci-hcd, first to 1 board, then to 8 at once, each time with
# one bulk transfer in flight (--bulk-transfers-in-flight 1, the old sender) and with the
# default queue, alternating, in the same VM. Every board checks every byte (SHA-256). Prints
# one line per phase and writes RESULTS_DIR/wire.tsv:
#   phase  boards  in_flight  per_board_MBps(median)  total_MBps  seconds
#   bench_wire.sh BUILD_DIR RESULTS_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
make_firmware
install_udev_rules

mib=${BOOT_MIB:-32}
boot=$work/fw/mass-storage-gadget64/boot.img
rm -f "$boot"
head -c $((mib << 20)) /dev/urandom >"$boot"
grep -v '  boot.img$' "$work/sums.2712" >"$work/sums.bench"
echo "$(sha256sum "$boot" | cut -d' ' -f1)  boot.img" >>"$work/sums.bench"

# MB/s of boot.img per board (median) and over all boards (bytes / first start -> last end),
# from the boards' own records (ms since power-on, the same instant for every board).
rates() {
    python3 - "$boards_dir" <<'EOF'
import glob, json, statistics, sys
per, total, first, last = [], 0, None, None
for path in glob.glob(sys.argv[1] + "/board-*.json"):
    record = json.load(open(path)).get("record", json.load(open(path)))
    for f in record.get("files", []):
        if f.get("name") == "boot.img" and f.get("durationMs", 0) > 0:
            per.append(f["receivedBytes"] / 1e3 / f["durationMs"])
            total += f["receivedBytes"]
            start, end = f["atMs"], f["atMs"] + f["durationMs"]
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
if not per:
    print("0 0")
else:
    print("%.2f %.2f" % (statistics.median(per), total / 1e3 / max(1, last - first)))
EOF
}

printf 'phase\tboards\tin_flight\tper_board_MBps\ttotal_MBps\tseconds\n' >"$results/wire.tsv"
serial=3c000001
run_phase() {  # NAME BOARDS IN_FLIGHT
    local name=$1 n=$2 depth=$3 args=()
    [[ $depth == default ]] || args=(--bulk-transfers-in-flight "$depth")
    start_daemon "${args[@]}"
    local t0=$SECONDS
    start_boards "$name" --hold -t 900 --serial-base "$serial" \
        "2712:mass-storage-gadget*$n,sums=$work/sums.bench"
    serial=$(printf '%x' $((0x$serial + 16)))
    # Every board ended ("holding"), or the program gave up on some ("finished").
    wait_for "every board of $name to end" 960 \
        grep -q '"state": *"\(holding\|finished\)"' "$boards_dir/summary.json"
    local seconds=$((SECONDS - t0))
    finish_boards >/dev/null
    stop_daemon
    local r
    r=$(rates)
    say "$name: $n board(s), in flight $depth: ${r% *} MB/s per board, ${r#* } MB/s in all" \
        "(${seconds} s)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$depth" "${r% *}" "${r#* }" "$seconds" \
        >>"$results/wire.tsv"
}

for n in ${BENCH_BOARDS:-1 8}; do
    run_phase "b$n-one" "$n" 1
    run_phase "b$n-queued" "$n" default
done
exit "$e2e_fail"
