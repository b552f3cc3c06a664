#!/bin/bash
# Benchmark, inside the test VM (not a test: scripts/bench.sh --vm runs it), on the real kernel
# USB stack (vhci-hcd, USB/IP boards). Two parts:
#
# Reply time (REPLY_REPEAT > 0, default 0): one BCM2711 board whose second stage asks
# REPLY_REQUESTS (default 1000) times for a 256-byte file (GetFileSize + ReadFile pairs), served
# in turn by REFERENCE_RPIBOOT (a user-supplied binary run as `PATH -d DIR`, when set), by our
# rpiboot (`-d DIR`), by rpibootd -v and by rpibootd without -v (rpibootd-quiet), REPLY_REPEAT
# rounds (REPLY_TOOLS picks and orders them). The daemon is started and idle before the board
# is plugged in, as on a station; nothing of the harness runs while a board is served (every
# host's output goes to the guest's /tmp, the harness blocks in wait). The board stamps
# each request's reply time (its request handed to the kernel -> the host's control OUT
# arriving, in us).
# Writes RESULTS_DIR/reply.tsv:
#   tool  rep  requests  mean_us  p50_us  p99_us  min_us  max_us
# and RESULTS_DIR/reply-TOOL-REP.txt (every sample, one per line).
#
# Bulk throughput: rpibootd serves a BOOT_MIB (default 32) MiB boot.img to BCM2712
# mass-storage-gadget boards, to 1 board, then to 8 at once (BENCH_BOARDS), each time with one
# bulk transfer in flight (--bulk-transfers-in-flight 1, the old sender) and with the default
# queue, alternating, BENCH_REPEAT (default 1) rounds. Every board checks every byte (SHA-256).
# Writes RESULTS_DIR/wire.tsv:
#   phase  rep  boards  in_flight  per_board_MBps(median)  total_MBps  seconds
#
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

printf 'phase\trep\tboards\tin_flight\tper_board_MBps\ttotal_MBps\tseconds\n' >"$results/wire.tsv"
serial=3c000001
run_phase() {  # NAME REP BOARDS IN_FLIGHT
    local name=$1 rep=$2 n=$3 depth=$4 args=()
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
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$n" "$depth" "${r% *}" "${r#* }" \
        "$seconds" >>"$results/wire.tsv"
}

# ---- reply time

# A BCM2711 board that asks REPLY_REQUESTS times for reply.bin (256 bytes), then says done.
reply_requests=${REPLY_REQUESTS:-1000}
reply_dir=$work/reply-flat
mkdir -p "$reply_dir"
cp "$work/msd-flat/bootcode4.bin" "$reply_dir/"
head -c 256 /dev/urandom >"$reply_dir/reply.bin"
cp "$reply_dir/reply.bin" "$work/fw/msd/reply.bin"
{
    echo "$(sha256sum "$reply_dir/bootcode4.bin" | cut -d' ' -f1)  bootcode4.bin"
    echo "$(sha256sum "$reply_dir/reply.bin" | cut -d' ' -f1)  reply.bin"
} >"$work/sums.reply"
cat >"$work/reply.json" <<EOF
{"name": "reply-bench", "chip": "2711", "rom": {"bootcode": "bootcode4.bin"},
 "steps": [{"kind": "file", "name": "reply.bin", "repeat": $((reply_requests / 2))},
           {"kind": "done"}],
 "final": {"kind": "none"}}
EOF

printf 'tool\trep\trequests\tmean_us\tp50_us\tp99_us\tmin_us\tmax_us\n' >"$results/reply.tsv"
run_reply() {  # TOOL REP
    local tool=$1 rep=$2 rc=0 boards_rc=0 host_pid=
    # The tools' output goes to the guest's own /tmp: writing it to the results share (9p)
    # while a request waits would time the share.
    local out=$work/host-$tool-$rep.txt
    # The daemon runs as on a station: started, idle, then the board is plugged in. The
    # one-shot tools start once the board is there, as their users run them.
    case $tool in
    rpibootd | rpibootd-quiet)  # -v or not; the log in the guest's /tmp, as the others'
        start_daemon  # installs the D-Bus policy
        stop_daemon
        local verbose=()
        [[ $tool == rpibootd ]] && verbose=(-v)
        "$rpibootd_bin" --bus system --firmware-dir "$work/fw" "${verbose[@]}" >"$out" 2>&1 &
        daemon_pid=$!
        e2e_pids+=("$daemon_pid")
        wait_for "rpibootd to own io.rpibootd1" 30 name_has_owner io.rpibootd1
        host_pid=$daemon_pid
        ;;
    esac
    [[ -n $host_pid ]] && sleep 1  # its start-up work done before the board appears
    start_boards "reply-$tool-$rep" -t 600 --serial-base "$serial" \
        "$work/reply.json,sums=$work/sums.reply"
    serial=$(printf '%x' $((0x$serial + 1)))
    case $tool in
    reference) timeout 120 "$REFERENCE_RPIBOOT" -d "$reply_dir" >"$out" 2>&1 || rc=$? ;;
    rpiboot) timeout 120 "$rpiboot_bin" -d "$reply_dir" >"$out" 2>&1 || rc=$? ;;
    esac
    # A one-shot tool that gave up leaves the board waiting: end it rather than wait for its -t.
    ((rc == 0)) || kill -TERM "$boards_pid" 2>/dev/null
    # Nothing of ours runs while a board is served: no polling loop here (a fork and exec
    # every 100 ms on the guest's only CPU showed as multi-ms replies). The board program
    # ends by itself once its board has (no --hold; its -t bounds it).
    wait "$boards_pid" || boards_rc=$?
    [[ -f $out ]] && cp "$out" "$boards_dir/host.txt"
    ((rc == 0)) || fail "$tool exited with status $rc (see $boards_dir/host.txt)"
    if ((boards_rc != 0)); then
        fail "the reply board ($tool) did not end as meant (exit $boards_rc); see $boards_dir"
        tail -n 30 "$boards_dir/log.txt" | sed 's/^/  | /' >&2
    fi
    [[ -n $host_pid ]] && stop_daemon
    python3 - "$boards_dir" "$tool" "$rep" "$results" >>"$results/reply.tsv" <<'EOF'
import glob, json, statistics, sys
d, tool, rep, out = sys.argv[1:5]
us = []
for path in glob.glob(d + "/board-*.json"):
    us += json.load(open(path)).get("replyMicros", [])
open("%s/reply-%s-%s.txt" % (out, tool, rep), "w").write("".join("%d\n" % u for u in us))
s = sorted(us) or [0]
p = lambda q: s[min(len(s) - 1, int(q * len(s)))]
print("%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d" % (tool, rep, len(us), statistics.mean(s), p(0.5),
                                            p(0.99), s[0], s[-1]))
EOF
    say "reply time, $tool, round $rep: $(tail -n 1 "$results/reply.tsv")"
}

# REPLY_TOOLS picks and orders them: reference, rpiboot, rpibootd, rpibootd-quiet (no -v).
read -r -a reply_tools <<<"${REPLY_TOOLS:-rpiboot rpibootd rpibootd-quiet}"
if [[ -n ${REFERENCE_RPIBOOT:-} ]]; then
    if [[ -x $REFERENCE_RPIBOOT ]]; then
        [[ -n ${REPLY_TOOLS:-} ]] || reply_tools=(reference "${reply_tools[@]}")
    else
        fail "REFERENCE_RPIBOOT=$REFERENCE_RPIBOOT is not an executable in the VM"
    fi
fi

# Rounds alternate the tools (and the in-flight depths), so that a change in the host's load
# falls on every column alike.
for ((rep = 1; rep <= ${REPLY_REPEAT:-0}; rep++)); do
    for tool in "${reply_tools[@]}"; do
        run_reply "$tool" "$rep"
    done
done
for ((rep = 1; rep <= ${BENCH_REPEAT:-1}; rep++)); do
    for n in ${BENCH_BOARDS:-1 8}; do
        run_phase "b$n-one-$rep" "$rep" "$n" 1
        run_phase "b$n-queued-$rep" "$rep" "$n" default
    done
done
exit "$e2e_fail"
